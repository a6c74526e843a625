//! The man page that `make man` writes (examples/man.rs, included here as it is): redilock.1
//! alone, naming every command with its options, the exit codes and the environment, and
//! rendering without a warning.

#[allow(dead_code)]
#[path = "../examples/man.rs"]
mod man;

use clap::CommandFactory;
use std::path::Path;
use std::process::Command;

/// The page as a reader sees it (plain text) and groff's warnings; `None` without groff.
fn rendered(page: &Path) -> Option<(String, String)> {
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .arg(page)
        .output()
        .ok()?;
    assert!(out.status.success(), "groff failed on {}", page.display());
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn the_man_page_names_every_command_exit_code_and_variable_and_renders_cleanly() {
    let dir = std::env::temp_dir().join(format!("redilock-cli-{}-man", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = man::write_page(&dir).unwrap();
    let written: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(written, ["redilock.1"], "the man page, nothing else");

    let page = std::fs::read_to_string(&path).unwrap();
    assert!(page.contains("\n.TH REDILOCK 1 "), "{page}");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "\"EXIT STATUS\"",
        "ENVIRONMENT",
        "EXAMPLES",
    ] {
        assert!(page.contains(&format!("\n.SH {section}\n")), "{section}");
    }
    let tool = man::args::Cli::command();
    let commands: Vec<_> = tool.get_subcommands().collect();
    assert!(commands.len() >= 5, "run, lock, unlock, extend, state");
    // A long option as roff writes it, every hyphen escaped.
    let long_option = |option: &str| format!("\\fB\\-\\-{}\\fR", option.replace('-', "\\-"));
    for option in tool.get_arguments().filter_map(|arg| arg.get_long()) {
        assert!(page.contains(&long_option(option)), "--{option}");
    }
    for command in commands {
        let name = command.get_name();
        assert!(
            page.contains(&format!("\n.SS {name}\n")) || page.contains(&format!("\n.SS \"{name} ")),
            "{name} has a section"
        );
        assert!(
            page.contains(&format!("\\fBredilock {name}\\fR")),
            "{name}: synopsis"
        );
        for option in command.get_arguments().filter_map(|arg| arg.get_long()) {
            assert!(page.contains(&long_option(option)), "{name}: --{option}");
        }
    }
    for (code, _) in man::args::EXIT_CODES {
        assert!(
            page.contains(&format!("\\fB{}\\fR", code.replace('-', "\\-"))),
            "{code}"
        );
    }
    for variable in [
        "REDIS_URL",
        "REDILOCK_TLS_CA",
        "REDILOCK_TLS_CERT",
        "REDILOCK_TLS_KEY",
        "REDILOCK_REPLICA_ACKS",
        "REDILOCK_REPLICA_ACK_TIMEOUT",
        "REDILOCK_QUORUM",
        "REDILOCK_NODE_TIMEOUT",
        "REDILOCK_CONNECT_TIMEOUT",
        "REDILOCK_COMMAND_TIMEOUT",
        "REDILOCK_NAME",
        "REDILOCK_TOKEN",
        "REDILOCK_FENCE",
    ] {
        assert!(
            page.contains(&format!("\n\\fB{variable}\\fR\n")),
            "{variable}"
        );
    }
    assert!(
        page.contains("There is no default TTL"),
        "extend says why --ttl is required"
    );

    match rendered(&path) {
        Some((text, warnings)) => {
            assert_eq!(warnings, "", "groff warns");
            for heading in [
                "EXIT STATUS",
                "ENVIRONMENT",
                "   state (also status)",
                "READONLY…",
            ] {
                assert!(text.contains(heading), "{heading}: {text}");
            }
        }
        None => eprintln!("no groff: the page was checked as roff source only"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
