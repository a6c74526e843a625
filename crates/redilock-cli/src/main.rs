//! `redilock`: the lock from the command line, like flock(1) across hosts. `redilock --help`
//! lists the commands and exit codes.

// The doc comments on the arguments are the help text (clap), written for a terminal: their
// brackets mark optional parts, not links.
#![allow(rustdoc::broken_intra_doc_links)]

mod acquire;
mod args;
mod commands;
mod duration;
mod exit;
mod run;
mod supervisor;
mod sys;

use args::{Cli, Command, ConnectionArgs};
use clap::error::ErrorKind;
use clap::Parser;
use exit::Failure;
use redilock::blocking::Client;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let client = match connect(&cli.connection) {
        Ok(client) => client,
        Err(failure) => return report(failure),
    };
    let outcome = match &cli.command {
        Command::Run(args) => run::run(&client, args, cli.quiet),
        Command::Lock { name, acquire } => commands::lock(&client, name, acquire, cli.quiet),
        Command::Unlock { name, token } => commands::unlock(&client, name, token),
        Command::Extend { name, token, ttl } => commands::extend(&client, name, token, *ttl),
        Command::State { name, json } => commands::state(&client, name, *json),
    };
    // Said before the client goes: dropping it waits (for a bounded time) for what a failed
    // call still has to give back, which must not hold up the message.
    let code = outcome.map_or_else(report, ExitCode::from);
    drop(client);
    code
}

/// The exit code of a success, or of a failure after saying why.
fn report(failure: Failure) -> ExitCode {
    if let Some(message) = failure.message {
        eprintln!("redilock: {message}");
    }
    ExitCode::from(failure.code)
}

pub fn connect(connection: &ConnectionArgs) -> Result<Client, Failure> {
    Ok(Client::new(&connection.url, connection.options())?)
}

/// `--help` and `--version` print and succeed; anything else clap refuses is a usage error,
/// said in one line rather than clap's paragraphs.
fn usage_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::from(exit::USAGE)
        }
        _ => {
            eprintln!("redilock: {}", one_line(&err.to_string()));
            ExitCode::from(exit::USAGE)
        }
    }
}

/// clap's first paragraph ("error: the following required arguments were not provided:" and
/// the list of them) on one line, pointing to the help of the command that was used.
fn one_line(rendered: &str) -> String {
    let reason = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let reason = reason.strip_prefix("error: ").unwrap_or(&reason);
    // "Usage: redilock run [OPTIONS] <NAME> <CMD>..." names the command.
    let command = rendered
        .lines()
        .find_map(|line| line.strip_prefix("Usage: "))
        .map(|usage| {
            usage
                .split(' ')
                .take_while(|word| !word.starts_with(['[', '<', '-']))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "redilock".into());
    format!("{reason} (see '{command} --help')")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn clap_errors_fit_on_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  <NAME>\n  <CMD>...\n\nUsage: redilock run --wait <DURATION> <NAME> <CMD>...\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "the following required arguments were not provided: <NAME> <CMD>... (see 'redilock run --help')"
        );
        let rendered = "error: invalid value '5x' for '--ttl <DURATION>': expected…\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "invalid value '5x' for '--ttl <DURATION>': expected… (see 'redilock --help')"
        );
    }
}
