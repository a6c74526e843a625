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
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use exit::Failure;
use redilock::blocking::Client;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match parse_command_line() {
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

/// The command line. REDIS_URL may list several URLs separated by whitespace, which no URL
/// holds (Sentinel and Cluster URLs hold commas); a --url is taken whole.
fn parse_command_line() -> Result<Cli, clap::Error> {
    let matches = Cli::command().try_get_matches()?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|err| err.format(&mut Cli::command()))?;
    if matches.value_source("url") == Some(ValueSource::EnvVariable) {
        let listed = cli
            .connection
            .url
            .iter()
            .flat_map(|url| url.split_whitespace());
        cli.connection.url = listed.map(String::from).collect();
    }
    Ok(cli)
}

/// One deployment, or a quorum of independent masters when several URLs are given (the
/// library refuses two, and checks --quorum against their number).
pub fn connect(connection: &ConnectionArgs) -> Result<Client, Failure> {
    let options = connection.options();
    match connection.url.as_slice() {
        [] => Err(Failure::new(exit::USAGE, "REDIS_URL names no Redis URL")),
        [_] if options.quorum.is_some() || options.node_timeout.is_some() => Err(Failure::new(
            exit::USAGE,
            "--quorum and --node-timeout are for a quorum of 3 or more masters (--url given \
             3 or more times), not for one Redis URL",
        )),
        [url] => Ok(Client::new(url, options)?),
        urls => Ok(Client::new_quorum(urls, options)?),
    }
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
