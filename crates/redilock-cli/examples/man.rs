//! Writes the man page of `redilock`, redilock.1, from its argument definitions, so that it
//! says what `--help` says: `cargo run -p redilock-cli --example man -- DIR` (`make man`
//! writes build/man/redilock.1). One page, as flock(1) has: a section per command, with its
//! own options. An example rather than part of the tool, so the `redilock` binary links no man
//! page generator.

// The tool's own modules, included as they are; the generator needs only their definitions.
#[allow(dead_code)]
#[path = "../src/args.rs"]
pub(crate) mod args;
#[allow(dead_code)]
#[path = "../src/duration.rs"]
mod duration;
#[allow(dead_code)]
#[path = "../src/exit.rs"]
mod exit;

use clap::CommandFactory;
use clap_mangen::Man;
use roff::{bold, roman, Roff};
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() -> ExitCode {
    let mut dirs = std::env::args_os().skip(1);
    let (Some(dir), None) = (dirs.next(), dirs.next()) else {
        eprintln!("usage: cargo run -p redilock-cli --example man -- DIR");
        return ExitCode::from(64);
    };
    match write_page(Path::new(&dir)) {
        Ok(path) => {
            println!("man: {}", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            let dir = dir.to_string_lossy();
            eprintln!("man: cannot write the page to {dir}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Writes redilock.1 into `dir` (created if missing) and returns its path.
pub fn write_page(dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("redilock.1");
    std::fs::write(&path, page()?)?;
    Ok(path)
}

/// The page's roff source: clap_mangen's sections for the tool and for each command, then
/// the tables the help text is written from.
pub fn page() -> io::Result<String> {
    let tool = args::Cli::command()
        .disable_help_subcommand(true)
        .subcommand_value_name("command");
    let man = Man::new(tool.clone())
        .title("REDILOCK")
        .date(date())
        .source(format!("redilock {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    let mut page = String::from_utf8_lossy(&page).into_owned();

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    roff.text([roman(
        "Each command takes the options above as well as its own.",
    )]);
    page.push_str(&roff.render());
    for command in tool.get_subcommands() {
        page.push_str(&command_section(command)?);
    }

    let mut roff = Roff::new();
    exit_status(&mut roff);
    environment(&mut roff, &tool);
    examples(&mut roff);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("flock(1)")]);
    page.push_str(&roff.render());
    Ok(tidy(&page))
}

/// A subsection for `command`: its synopsis, its description and its own options (the
/// tool's are in OPTIONS), as clap_mangen renders them for a page of its own.
fn command_section(command: &clap::Command) -> io::Result<String> {
    let name = command.get_name();
    let man = Man::new(command.clone().bin_name(format!("redilock {name}")));
    let aliases: Vec<&str> = command.get_all_aliases().collect();
    let heading = match aliases.is_empty() {
        true => name.to_string(),
        false => format!("{name} (also {})", aliases.join(", ")),
    };
    let mut roff = Roff::new();
    roff.control("SS", [heading.as_str()]);
    let mut section = roff.render();
    for part in [
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ] {
        let mut out = Vec::new();
        part(&man, &mut out)?;
        section.push_str(&without_heading(&String::from_utf8_lossy(&out))?);
        section.push_str(".PP\n");
    }
    Ok(section)
}

/// A part rendered as a section of its own, without its `.SH` line.
fn without_heading(part: &str) -> io::Result<String> {
    let preamble = Roff::new().render();
    let part = part.strip_prefix(preamble.as_str()).unwrap_or(part);
    match part.split_once('\n') {
        Some((heading, rest)) if heading.starts_with(".SH ") => Ok(rest.to_string()),
        _ => Err(io::Error::other(format!(
            "clap_mangen rendered a part without a .SH line: {part:?}"
        ))),
    }
}

/// The page with the preamble each rendered part starts with (it defines the `Aq` apostrophe)
/// kept once, at the top, and every character outside ASCII written as a roff escape, so
/// that groff reads the page without preconv.
fn tidy(page: &str) -> String {
    let preamble = Roff::new().render(); // the preamble alone
    let page = match page.strip_prefix(preamble.as_str()) {
        Some(rest) => format!("{preamble}{}", rest.replace(preamble.as_str(), "")),
        None => page.to_string(),
    };
    page.chars()
        .map(|c| match c.is_ascii() {
            true => c.to_string(),
            false => format!("\\[u{:04X}]", u32::from(c)),
        })
        .collect()
}

/// The page's date, YYYY-MM-DD: SOURCE_DATE_EPOCH's when set (reproducible builds), else
/// today's.
fn date() -> String {
    let since_epoch = match std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seconds) => Duration::from_secs(seconds),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    };
    let (year, month, day) = civil_date(since_epoch.as_secs() / 86_400);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The proleptic Gregorian date `days` days after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March is 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// One `.TP` item: `term` in bold, then what it means.
fn item(roff: &mut Roff, term: &str, meaning: &str) {
    roff.control("TP", []);
    roff.text([bold(term)]);
    // A line break in a meaning is the help text's wrapping, not the page's.
    let meaning: Vec<&str> = meaning.lines().map(str::trim).collect();
    roff.text([roman(meaning.join(" "))]);
}

fn exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in args::EXIT_CODES {
        item(roff, code, meaning);
    }
}

/// The variables redilock reads (from the options' definitions), and those `run` sets.
fn environment(roff: &mut Roff, tool: &clap::Command) {
    roff.control("SH", ["ENVIRONMENT"]);
    for arg in tool.get_arguments() {
        if let (Some(variable), Some(long)) = (arg.get_env(), arg.get_long()) {
            let help = arg
                .get_help()
                .map(|help| help.to_string())
                .unwrap_or_default();
            let meaning = format!("Read when --{long} is not given. {help}.");
            item(roff, &variable.to_string_lossy(), &meaning);
        }
    }
    for (variable, meaning) in args::COMMAND_ENVIRONMENT {
        item(
            roff,
            variable,
            &format!("Set by run for its command: {meaning}."),
        );
    }
}

fn examples(roff: &mut Roff) {
    roff.control("SH", ["EXAMPLES"]);
    for (line, what) in args::EXAMPLES {
        roff.control("PP", []);
        if let Some(first) = what.chars().next() {
            let rest = &what[first.len_utf8()..];
            roff.text([roman(format!("{}{rest}:", first.to_uppercase()))]);
        }
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        roff.text([roman(*line)]);
        roff.control("fi", []);
        roff.control("RE", []);
    }
}
