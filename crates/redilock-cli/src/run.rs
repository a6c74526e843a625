//! `redilock run NAME -- CMD`: the command runs while the lock is held and renewed.

use crate::acquire::acquire;
use crate::args::RunArgs;
use crate::duration;
use crate::exit::{self, Failure};
use crate::supervisor::Supervisor;
use redilock::{blocking::Client, AutoRenew, Error, Lease, Renewal};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::sync::{Arc, OnceLock};

/// Returns the command's exit code, or why it did not run to the end under the lock.
pub fn run(client: &Client, args: &RunArgs, quiet: bool) -> Result<u8, Failure> {
    let supervisor = Supervisor::start()?;
    let lease = acquire(client, &args.name, &args.acquire, &supervisor, quiet)?;
    let outcome = keep_renewed(client, args, &lease, &supervisor)
        .and_then(|_renewal| supervisor.run_child(command(args, &lease)));
    let released = client.unlock(&args.name, &lease.token);
    if supervisor.lease_was_lost() || matches!(released, Err(Error::NotOwner(_))) {
        return Err(supervisor.lost_lease_failure(&args.name));
    }
    if let Err(err) = released {
        eprintln!(
            "redilock: could not release the lock '{}' ({err}); it expires within {}",
            args.name,
            duration::describe(args.acquire.ttl)
        );
    }
    outcome.map(exit_code)
}

/// Renews the lease while the command runs; losing it stops the command.
fn keep_renewed(
    client: &Client,
    args: &RunArgs,
    lease: &Lease,
    supervisor: &Arc<Supervisor>,
) -> Result<Renewal, Failure> {
    let (watcher, name, kill_after) = (supervisor.clone(), args.name.clone(), args.kill_after);
    // The callback asks the renewal why it was lost; the renewal is known once auto_renew has
    // returned, long before its first attempt (a third of the TTL after the acquisition).
    let renewal = Arc::new(OnceLock::<Renewal>::new());
    let asked = renewal.clone();
    let keep = AutoRenew {
        max_hold: None,
        on_lost: Some(Box::new(move || {
            let loss = asked.get().and_then(Renewal::loss);
            watcher.lease_lost(&name, kill_after, loss)
        })),
    };
    let started = client.auto_renew(&args.name, lease, keep)?;
    let _ = renewal.set(started.clone());
    Ok(started)
}

fn command(args: &RunArgs, lease: &Lease) -> Command {
    let mut command = Command::new(&args.command[0]);
    command
        .args(&args.command[1..])
        .env("REDILOCK_NAME", &args.name)
        .env("REDILOCK_TOKEN", lease.token.as_str())
        .env("REDILOCK_FENCE", lease.fence.to_string());
    command
}

/// The exit code a shell would report for the command.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => exit::signalled(signal),
        (None, None) => exit::INTERNAL,
    }
}
