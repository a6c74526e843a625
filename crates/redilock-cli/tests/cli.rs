//! The `redilock` binary against real redis-servers: runs that take turns, exit codes, signals,
//! a lock stolen mid-run, the script commands, the waiting status line, one-line errors.

use redilock::{blocking::Client, Lease, Options, Wait};
use redilock_test_harness::tls::TestCertificates;
use redilock_test_harness::{queue, scaled, wait_until, RedisCluster, RedisServer, Sentinels};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn redilock(server: &RedisServer) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_redilock"));
    command.env("REDIS_URL", server.url());
    command
}

struct Finished {
    code: i32,
    stdout: String,
    stderr: String,
}

fn finish(command: &mut Command) -> Finished {
    let out = command.output().expect("redilock runs");
    Finished {
        code: out.status.code().expect("redilock exits, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The one error line, checked to be one line in redilock's format.
fn error_line(finished: &Finished) -> &str {
    let line = finished.stderr.strip_suffix('\n').unwrap_or_default();
    assert!(
        line.starts_with("redilock: ") && !line.contains('\n'),
        "not one error line: {:?}",
        finished.stderr
    );
    line
}

fn wait_at_most(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("redilock still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Spawns `run` with a shell script as the command, and waits until the script says "ready".
fn spawn_ready(
    command: &mut Command,
    script: &str,
) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = command
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    (child, stdout)
}

fn send_signal(child: &Child, signal: libc::c_int) {
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
}

/// Takes `name` in the test process, as another host would.
fn hold(server: &RedisServer, name: &str, ttl: Duration) -> Lease {
    Client::new(&server.url(), Options::default())
        .unwrap()
        .lock(name, Some(ttl), Wait::TryOnce)
        .unwrap()
}

fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("redilock-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const PROBE: &str = "echo \"$REDILOCK_NAME $REDILOCK_TOKEN $REDILOCK_FENCE\"";

#[test]
fn two_runs_on_one_name_take_turns() {
    let server = RedisServer::start();
    let dir = scratch_dir("turns");
    let script = "date +%s%N > \"$0\"; sleep 1; date +%s%N >> \"$0\"";
    let logs = [dir.join("a"), dir.join("b")];
    let mut runs: Vec<Child> = logs
        .iter()
        .map(|log| {
            redilock(&server)
                .args(["run", "nightly", "--", "sh", "-c", script])
                .arg(log)
                .spawn()
                .unwrap()
        })
        .collect();
    for run in &mut runs {
        assert!(wait_at_most(run, Duration::from_secs(20)).success());
    }
    let spans: Vec<(u128, u128)> = logs
        .iter()
        .map(|log| {
            let text = std::fs::read_to_string(log).unwrap();
            let stamps: Vec<u128> = text.lines().map(|l| l.parse().unwrap()).collect();
            (stamps[0], stamps[1])
        })
        .collect();
    let (a, b) = (spans[0], spans[1]);
    assert!(a.1 <= b.0 || b.1 <= a.0, "the runs overlapped: {a:?} {b:?}");
    assert_eq!(server.cli(&["EXISTS", "nightly"]), "0");
    let _ = std::fs::remove_dir_all(dir);
}

/// Two runs on `name` through `url` at once, each holding the lock for a while: the spans
/// they report must not overlap.
fn runs_take_turns(url: &str, name: &str) {
    let script = "echo start $(date +%s%N); sleep 0.3; echo end $(date +%s%N)";
    let runs: Vec<Child> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_redilock"))
                .env("REDIS_URL", url)
                .args(["run", name, "--", "sh", "-c", script])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let spans: Vec<(u128, u128)> = runs
        .into_iter()
        .map(|run| {
            let out = run.wait_with_output().unwrap();
            assert!(out.status.success(), "{url}: {out:?}");
            let text = String::from_utf8(out.stdout).unwrap();
            let stamp = |i: usize| text.split_whitespace().nth(i).unwrap().parse().unwrap();
            (stamp(1), stamp(3))
        })
        .collect();
    let (a, b) = (spans[0], spans[1]);
    assert!(
        a.1 <= b.0 || b.1 <= a.0,
        "{url}: the runs overlapped: {a:?} {b:?}"
    );
}

#[test]
fn runs_take_turns_on_a_cluster_and_on_the_primary_sentinel_names() {
    let cluster = RedisCluster::start(3, 0);
    let sentinels = Sentinels::start(0, 1);
    for url in [cluster.url(), sentinels.url()] {
        for name in ["nightly", "{user1}:job", "x{}y"] {
            runs_take_turns(&url, name);
            let state = finish(
                Command::new(env!("CARGO_BIN_EXE_redilock"))
                    .env("REDIS_URL", &url)
                    .args(["state", name]),
            );
            assert_eq!((state.code, state.stdout.as_str()), (0, "free\n"), "{url}");
        }
    }
}

#[test]
fn the_command_holds_the_lease_it_sees_and_its_exit_code_passes_through() {
    let server = RedisServer::start();
    let script = format!("{PROBE}; redis-cli -p {} GET job; exit 3", server.port);
    let run = finish(redilock(&server).args(["run", "job", "--", "sh", "-c", &script]));
    assert_eq!(run.code, 3, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let seen: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(seen[0], "job");
    assert_eq!(seen[1].len(), 32);
    assert_eq!(
        lines[1], seen[1],
        "REDILOCK_TOKEN is the token holding the lock"
    );
    let fence: u64 = seen[2].parse().unwrap();

    let run = finish(redilock(&server).args(["run", "job", "--", "sh", "-c", PROBE]));
    assert_eq!(run.code, 0);
    let next_fence: u64 = run
        .stdout
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(next_fence > fence);

    for (signal, code) in [("KILL", 137), ("TERM", 143)] {
        let script = format!("kill -{signal} $$");
        let run = finish(redilock(&server).args(["run", "job", "--", "sh", "-c", &script]));
        assert_eq!(run.code, code, "killed by SIG{signal}");
    }
    assert_eq!(server.cli(&["EXISTS", "job"]), "0", "released every time");
}

#[test]
fn a_held_lock_gives_the_conflict_code_at_once_with_no_wait() {
    let server = RedisServer::start();
    let lease = hold(&server, "deploy", Duration::from_secs(60));
    let dir = scratch_dir("no-wait");
    let marker = dir.join("ran");
    let touch = ["touch", marker.to_str().unwrap()];

    let run = finish(
        redilock(&server)
            .args(["run", "--no-wait", "deploy", "--"])
            .args(touch),
    );
    assert_eq!(run.code, 75);
    assert!(error_line(&run).contains("held by another owner"));
    let run = finish(
        redilock(&server)
            .args([
                "run",
                "--no-wait",
                "--conflict-exit-code",
                "9",
                "deploy",
                "--",
            ])
            .args(touch),
    );
    assert_eq!(run.code, 9);
    assert!(!marker.exists(), "the command never ran");
    let lock = finish(redilock(&server).args(["lock", "deploy", "--no-wait"]));
    assert_eq!((lock.code, lock.stdout.as_str()), (75, ""));
    assert_eq!(server.cli(&["GET", "deploy"]), lease.token.as_str());
    let _ = std::fs::remove_dir_all(dir);
}

/// As `flock -n -E 0` in a crontab: a lock held elsewhere is no news, and cron mails whatever
/// reaches stderr.
#[test]
fn a_conflict_is_silent_with_quiet_or_a_chosen_exit_code() {
    let server = RedisServer::start();
    let lease = hold(&server, "report", Duration::from_secs(60));
    let dir = scratch_dir("silent");
    let marker = dir.join("ran");
    let touch = ["touch", marker.to_str().unwrap()];
    for (args, code) in [
        (
            &["run", "--no-wait", "--conflict-exit-code", "0", "report"][..],
            0,
        ),
        (&["run", "--no-wait", "--quiet", "report"], 75),
        (
            &[
                "run",
                "-q",
                "--no-wait",
                "--conflict-exit-code",
                "0",
                "report",
            ],
            0,
        ),
        (
            &["run", "--wait", "1s", "--conflict-exit-code", "3", "report"],
            3,
        ),
    ] {
        let run = finish(redilock(&server).args(args).arg("--").args(touch));
        assert_eq!((run.code, run.stderr.as_str()), (code, ""), "{args:?}");
    }
    for args in [
        &["lock", "report", "--no-wait", "--conflict-exit-code", "75"][..],
        &["lock", "report", "--no-wait", "-q"],
    ] {
        let lock = finish(redilock(&server).args(args));
        assert_eq!(
            (lock.code, lock.stdout.as_str(), lock.stderr.as_str()),
            (75, "", "")
        );
    }
    assert!(!marker.exists(), "the command never ran");
    assert_eq!(server.cli(&["GET", "report"]), lease.token.as_str());

    // What is not a conflict is still said.
    let unreachable = format!("redis://127.0.0.1:{}", redilock_test_harness::free_port());
    let run = finish(
        redilock(&server)
            .args(["run", "-q", "--no-wait", "--conflict-exit-code", "0"])
            .args(["--url", &unreachable, "report", "--"])
            .args(touch),
    );
    assert_eq!(run.code, 69);
    assert!(error_line(&run).contains("refused"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn wait_gives_up_after_its_limit_silently_off_a_terminal() {
    let server = RedisServer::start();
    hold(&server, "report", Duration::from_secs(60));
    let started = Instant::now();
    let run = finish(redilock(&server).args(["run", "--wait", "1500ms", "report", "--", "true"]));
    let waited = started.elapsed();
    assert_eq!(run.code, 75);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    assert!(
        error_line(&run).contains("held by another owner"),
        "no status line either"
    );
}

#[test]
fn sigterm_reaches_the_command_and_the_lock_is_released_after_it_ends() {
    let server = RedisServer::start();
    let (mut run, mut stdout) = spawn_ready(
        redilock(&server).args(["run", "job"]),
        "trap 'echo got TERM; exit 5' TERM; echo ready; while :; do sleep 0.1; done",
    );
    assert_ne!(server.cli(&["EXISTS", "job"]), "0");
    send_signal(&run, libc::SIGTERM);
    let status = wait_at_most(&mut run, Duration::from_secs(10));
    assert_eq!(status.code(), Some(5));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got TERM\n");
    assert_eq!(server.cli(&["EXISTS", "job"]), "0");
}

#[test]
fn a_stolen_lock_stops_the_command_with_its_own_exit_code() {
    let server = RedisServer::start();
    let started = Instant::now();
    // The command ignores SIGTERM, so only SIGKILL, --kill-after later, ends it.
    let (mut run, mut stdout) = spawn_ready(
        redilock(&server).args(["run", "--ttl", "1500ms", "--kill-after", "1s", "job"]),
        "trap 'echo got TERM' TERM; echo ready; while :; do sleep 0.1; done",
    );
    server.cli(&["DEL", "job"]);
    let status = wait_at_most(&mut run, Duration::from_secs(15));
    assert_eq!(status.code(), Some(79));
    assert!(started.elapsed() >= Duration::from_secs(1));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got TERM\n");
    let mut stderr = String::new();
    run.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr
            .starts_with("redilock: lost the lock 'job': Redis says this token no longer holds it"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A renewal Redis never answers says nothing about who holds the lock: the message says
/// Redis stopped answering, not that the lock was taken over.
#[test]
fn a_redis_that_stops_answering_during_run_is_not_called_a_takeover() {
    let server = RedisServer::start();
    let (mut run, _stdout) = spawn_ready(
        redilock(&server).args(["run", "--ttl", "3s", "--kill-after", "1s", "job"]),
        "echo ready; while :; do sleep 0.1; done",
    );
    server.pause();
    let mut line = String::new();
    BufReader::new(run.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    server.resume();
    let status = wait_at_most(&mut run, scaled(Duration::from_secs(30)));
    assert_eq!(status.code(), Some(79), "{line}");
    assert!(
        line.starts_with("redilock: lost the lock 'job': Redis stopped answering")
            && line.contains("may have expired")
            && !line.contains("took it"),
        "{line}"
    );
}

#[test]
fn a_signal_while_waiting_ends_the_wait_without_running_the_command() {
    let server = RedisServer::start();
    let lease = hold(&server, "job", Duration::from_secs(60));
    let mut run = redilock(&server)
        .args(["run", "job", "--", "echo", "ran"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Once queued it waits, and by then it handles signals.
    wait_until("redilock waits in the queue", || {
        queue(&server, "job").len() == 1
    });
    send_signal(&run, libc::SIGINT);
    let status = wait_at_most(&mut run, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    let mut stdout = String::new();
    run.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(stdout, "");
    assert_eq!(server.cli(&["GET", "job"]), lease.token.as_str());
}

#[test]
fn lock_status_extend_unlock_round_trip() {
    let server = RedisServer::start();
    let status = |json: bool| {
        let mut command = redilock(&server);
        command.args(["status", "batch"]);
        if json {
            command.arg("--json");
        }
        let status = finish(&mut command);
        assert_eq!(status.code, 0, "{}", status.stderr);
        status.stdout
    };
    assert_eq!(status(false), "free\n");
    assert_eq!(
        status(true),
        "{\"name\":\"batch\",\"held\":false,\"remaining_ms\":null}\n"
    );

    let lock = finish(redilock(&server).args(["lock", "batch", "--ttl", "20s"]));
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    let token = lock.stdout.trim().to_string();
    assert_eq!(server.cli(&["GET", "batch"]), token);
    assert!(status(false).starts_with("held, "));
    let json = status(true);
    let remaining: u64 = json
        .split("\"remaining_ms\":")
        .nth(1)
        .and_then(|rest| rest.trim_end().strip_suffix('}'))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("{json}"));
    assert!(json.contains("\"held\":true") && remaining <= 20_000);

    let extend = finish(redilock(&server).args(["extend", "batch", &token, "--ttl", "1h"]));
    assert_eq!(extend.code, 0, "{}", extend.stderr);
    assert!(server.cli(&["PTTL", "batch"]).parse::<u64>().unwrap() > 3_500_000);
    assert_eq!(status(false), "held, 60 min left\n");

    let wrong = finish(redilock(&server).args(["extend", "batch", "not-the-token", "--ttl", "1s"]));
    assert_eq!(wrong.code, 79);
    assert!(error_line(&wrong).contains("not held by this token"));
    let unlock = finish(redilock(&server).args(["unlock", "batch", &token]));
    assert_eq!(unlock.code, 0, "{}", unlock.stderr);
    assert_eq!(status(false), "free\n");
    let again = finish(redilock(&server).args(["unlock", "batch", &token]));
    assert_eq!(again.code, 79);
    error_line(&again);
}

#[test]
fn commands_that_cannot_run_exit_like_a_shell_and_release_the_lock() {
    let server = RedisServer::start();
    let missing = finish(redilock(&server).args(["run", "job", "--", "no-such-command-anywhere"]));
    assert_eq!(missing.code, 127);
    assert!(error_line(&missing).contains("command not found"));

    let dir = scratch_dir("not-executable");
    let script = dir.join("script.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let denied = finish(redilock(&server).args(["run", "job", "--"]).arg(&script));
    assert_eq!(denied.code, 126);
    error_line(&denied);
    assert_eq!(server.cli(&["EXISTS", "job"]), "0");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn usage_errors_and_an_unreachable_redis_are_one_line_with_their_codes() {
    let server = RedisServer::start();
    for args in [
        &["run", "--ttl", "30x", "job", "--", "true"][..],
        &["run", "--wait", "1s", "--no-wait", "job", "--", "true"],
        &["run", "job"],
        &["lock", "job", "--bogus"],
        &["frobnicate"],
        &[
            "run",
            "--url",
            "redis://user:secret@[::1",
            "job",
            "--",
            "true",
        ],
        &["status", ""],
    ] {
        let finished = finish(redilock(&server).args(args));
        assert_eq!(finished.code, 64, "{args:?}: {}", finished.stderr);
        assert!(!error_line(&finished).contains("secret"));
    }
    let unreachable = format!("redis://127.0.0.1:{}", redilock_test_harness::free_port());
    let finished = finish(redilock(&server).args(["status", "job", "--url", &unreachable]));
    assert_eq!(finished.code, 69);
    assert!(error_line(&finished).contains("refused"));

    let version = finish(redilock(&server).arg("--version"));
    assert_eq!(
        (version.code, version.stdout.trim()),
        (0, concat!("redilock ", env!("CARGO_PKG_VERSION")))
    );
    let help = finish(redilock(&server).arg("--help"));
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Examples:") && help.stdout.contains("79"));
}

/// Redis does not keep the TTL a lock was taken with, so extend has no TTL of its own to fall
/// back on: without --ttl it refuses, rather than set a default that shortens a longer lock.
#[test]
fn extend_without_a_ttl_is_refused_and_leaves_the_lock_as_it_was() {
    let server = RedisServer::start();
    let lock = finish(redilock(&server).args(["lock", "migrate", "--ttl", "5m"]));
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    let token = lock.stdout.trim();
    let pttl = || server.cli(&["PTTL", "migrate"]).parse::<u64>().unwrap();

    let extend = finish(redilock(&server).args(["extend", "migrate", token]));
    assert_eq!(extend.code, 64);
    assert!(error_line(&extend).contains("--ttl"), "{}", extend.stderr);
    assert!(pttl() > 240_000, "still about 5 minutes left");

    // Asked for, a shorter TTL is set: the TTL is not added to what is left.
    let extend = finish(redilock(&server).args(["extend", "migrate", token, "--ttl", "10s"]));
    assert_eq!(extend.code, 0, "{}", extend.stderr);
    assert!(pttl() <= 10_000);
    let help = finish(redilock(&server).args(["extend", "--help"]));
    assert!(help.stdout.contains("--ttl is"), "{}", help.stdout);
}

#[test]
fn a_missing_unix_socket_is_said_to_be_missing_not_refused() {
    let server = RedisServer::start();
    let socket = format!("unix://{}", server.socket_path().display());
    let state = finish(redilock(&server).args(["state", "job", "--url", &socket]));
    assert_eq!(
        (state.code, state.stdout.as_str()),
        (0, "free\n"),
        "{}",
        state.stderr
    );

    let dir = scratch_dir("no-socket");
    let missing = format!("unix://{}", dir.join("redis.sock").display());
    let state = finish(redilock(&server).args(["state", "job", "--url", &missing]));
    assert_eq!(state.code, 69);
    let line = error_line(&state);
    assert!(
        line.contains("the socket does not exist (No such file or directory)")
            && !line.contains("refused"),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_url_is_shown_as_given_with_its_password_masked() {
    let server = RedisServer::start();
    for (url, shown) in [
        ("user:secret@host:6379", "'user:***@host:6379'"),
        ("redis://user:secret@[::1", "'redis://user:***@[::1'"),
        ("localhost:6379", "'localhost:6379'"),
        (
            "redis+cluster://u:secret@h:1,,h:2",
            "'redis+cluster://u:***@h:1,,h:2': an empty host",
        ),
        (
            "redis+sentinel://:secret@h:1",
            "'redis+sentinel://:***@h:1': no primary name",
        ),
        (
            "redis+cluster://:secret@h:1/2",
            "'redis+cluster://:***@h:1/2': a cluster has one database",
        ),
    ] {
        let finished = finish(redilock(&server).args(["state", "job", "--url", url]));
        assert_eq!(finished.code, 64, "{url}: {}", finished.stderr);
        let line = error_line(&finished);
        assert!(
            line.contains(&format!("invalid Redis URL {shown}")) && !line.contains("secret"),
            "{line}"
        );
    }
    // From the environment too, where cron jobs keep it.
    let finished = finish(
        redilock(&server)
            .env("REDIS_URL", "redis//:secret@host")
            .args(["state", "job"]),
    );
    assert_eq!(finished.code, 64);
    assert!(error_line(&finished).contains("'redis//:***@host'"));
}

/// `redilock` for a TLS server, trusting the CA of its certificate.
fn redilock_tls(server: &RedisServer, certificates: &TestCertificates) -> Command {
    let mut command = redilock(server);
    command.arg("--tls-ca").arg(certificates.ca());
    command
}

#[test]
fn lock_and_unlock_over_tls_trusting_a_ca_file() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start_tls(&certificates, false);
    let lock = finish(redilock_tls(&server, &certificates).args(["lock", "tls-job"]));
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    let token = lock.stdout.trim();
    assert_eq!(server.cli(&["GET", "tls-job"]), token);
    // The CA from the environment, as a crontab would set it.
    let unlock = finish(
        redilock(&server)
            .env("REDILOCK_TLS_CA", certificates.ca())
            .args(["unlock", "tls-job", token]),
    );
    assert_eq!(unlock.code, 0, "{}", unlock.stderr);
    assert_eq!(server.cli(&["EXISTS", "tls-job"]), "0");

    let other_ca = finish(
        redilock(&server)
            .args(["lock", "tls-job", "--tls-ca"])
            .arg(certificates.other_ca()),
    );
    assert_eq!(other_ca.code, 69, "{}", other_ca.stderr);
    let line = error_line(&other_ca);
    let refused = format!(
        "TLS handshake with 127.0.0.1:{} failed: the server's certificate did not verify: UnknownIssuer",
        server.port
    );
    assert!(line.contains(&refused), "{line}");
    assert_eq!(server.cli(&["EXISTS", "tls-job"]), "0");
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start_tls(&certificates, true);
    let lock = finish(
        redilock_tls(&server, &certificates)
            .args(["lock", "mtls"])
            .arg("--tls-cert")
            .arg(certificates.client_cert())
            .arg("--tls-key")
            .arg(certificates.client_key()),
    );
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    let token = lock.stdout.trim();
    assert_eq!(server.cli(&["GET", "mtls"]), token);
    let unlock = finish(
        redilock_tls(&server, &certificates)
            .env("REDILOCK_TLS_CERT", certificates.client_cert())
            .env("REDILOCK_TLS_KEY", certificates.client_key())
            .args(["unlock", "mtls", token]),
    );
    assert_eq!(unlock.code, 0, "{}", unlock.stderr);

    let without = finish(redilock_tls(&server, &certificates).args(["lock", "mtls"]));
    assert_eq!(without.code, 69, "{}", without.stderr);
    assert!(
        error_line(&without).contains("the server requires a client certificate"),
        "{}",
        without.stderr
    );
    assert_eq!(server.cli(&["EXISTS", "mtls"]), "0");
}

/// Checked before anything is sent: clap checks the options, the library the values and the
/// files (when the client is made).
#[test]
fn tls_and_replica_options_that_cannot_be_used_are_usage_errors() {
    let server = RedisServer::start();
    let usage_error = |command: &mut Command, said: &str| {
        let finished = finish(command);
        assert_eq!(finished.code, 64, "{said}: {}", finished.stderr);
        let line = error_line(&finished);
        assert!(line.contains(said), "{said}: {line}");
    };
    let tls_url = format!("rediss://127.0.0.1:{}", redilock_test_harness::free_port());
    for (args, said) in [
        (&["--tls-cert", "client.pem"][..], "--tls-key <FILE>"),
        (&["--tls-key", "client.key"], "--tls-cert <FILE>"),
        (&["--replica-acks", "some"], "expected auto, or a number"),
        (&["--replica-acks=-1"], "expected auto, or a number"),
        (
            &["--replica-ack-timeout", "1.5s"],
            "expected a whole number",
        ),
        (
            &["--replica-ack-timeout", "0ms"],
            "the replica acknowledgement timeout must be at least 1 ms",
        ),
        (
            &["--replica-ack-timeout", "2s"],
            "must be shorter than the command timeout (2000 ms)",
        ),
        (
            &["--command-timeout", "5s", "--replica-ack-timeout", "5s"],
            "must be shorter than the command timeout (5000 ms)",
        ),
        (
            &["--command-timeout", "0ms"],
            "the command timeout must be greater than 0",
        ),
        (
            &["--connect-timeout", "0ms"],
            "the connect timeout must be greater than 0",
        ),
        (
            &["--url", &tls_url, "--tls-ca", "/nonexistent/ca.pem"],
            "the TLS CA file /nonexistent/ca.pem cannot be read",
        ),
        (&["--tls-ca", "/nonexistent/ca.pem"], "rediss://"),
    ] {
        usage_error(redilock(&server).args(["state", "job"]).args(args), said);
    }
    usage_error(
        redilock(&server)
            .env("REDILOCK_TLS_CERT", "client.pem")
            .args(["state", "job"]),
        "--tls-key <FILE>",
    );
}

/// The test server has no replica: a lock that must be acknowledged by one is released.
#[test]
fn too_few_replica_acknowledgements_exit_69_and_leave_nothing_held() {
    let server = RedisServer::start();
    let acknowledged = ["--replica-acks", "1", "--replica-ack-timeout", "50ms"];
    let lock = finish(redilock(&server).args(["lock", "acked"]).args(acknowledged));
    assert_eq!(
        (lock.code, lock.stdout.as_str()),
        (69, ""),
        "{}",
        lock.stderr
    );
    assert!(
        error_line(&lock).contains(
            "the acquisition of lock 'acked' was acknowledged by 0 of the 1 replicas required \
             within 50 ms, so the lock is released"
        ),
        "{}",
        lock.stderr
    );
    assert_eq!(server.cli(&["EXISTS", "acked"]), "0");

    let dir = scratch_dir("not-replicated");
    let marker = dir.join("ran");
    let run = finish(
        redilock(&server)
            .env("REDILOCK_REPLICA_ACKS", "1")
            .args(["run", "acked", "--", "touch"])
            .arg(&marker),
    );
    assert_eq!(run.code, 69, "{}", run.stderr);
    error_line(&run);
    assert!(!marker.exists(), "the command never ran");
    assert_eq!(server.cli(&["EXISTS", "acked"]), "0");
    assert!(queue(&server, "acked").is_empty());

    let unacknowledged = finish(redilock(&server).args(["lock", "acked", "--replica-acks", "0"]));
    assert_eq!(unacknowledged.code, 0, "{}", unacknowledged.stderr);
    assert_eq!(server.cli(&["GET", "acked"]), unacknowledged.stdout.trim());
    let _ = std::fs::remove_dir_all(dir);
}

/// A pseudo-terminal whose other end is redilock's stderr.
struct Pty {
    leader: File,
    follower: File,
}

impl Pty {
    fn open() -> Pty {
        // SAFETY: plain calls on a descriptor this function owns; ptsname's buffer is copied
        // before any other pty call.
        unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(fd >= 0, "posix_openpt");
            assert_eq!(libc::grantpt(fd), 0);
            assert_eq!(libc::unlockpt(fd), 0);
            let path = std::ffi::CStr::from_ptr(libc::ptsname(fd))
                .to_str()
                .unwrap()
                .to_owned();
            let leader = <File as std::os::fd::FromRawFd>::from_raw_fd(fd);
            let follower = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap();
            Pty { leader, follower }
        }
    }

    /// Everything written to the terminal until its last writer closed it.
    fn read_all(mut self) -> String {
        drop(self.follower);
        let mut out = Vec::new();
        let _ = self.leader.read_to_end(&mut out); // ends with EIO once nobody writes
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[test]
fn a_wait_on_a_terminal_shows_who_holds_the_lock_unless_quiet() {
    let server = RedisServer::start();
    // Left to expire, late enough that redilock, however slow to start, waits past its
    // first second.
    for name in ["shown", "quiet"] {
        hold(&server, name, Duration::from_secs(4));
    }
    let spawn = |name: &str, pty: &Pty, quiet: bool| {
        let mut command = redilock(&server);
        command.args(["run", "--wait", "20s", name]);
        if quiet {
            command.arg("--quiet");
        }
        command
            .args(["--", "true"])
            .stderr(pty.follower.try_clone().unwrap())
            .spawn()
            .unwrap()
    };
    let (shown_pty, quiet_pty) = (Pty::open(), Pty::open());
    let mut shown = spawn("shown", &shown_pty, false);
    let mut quiet = spawn("quiet", &quiet_pty, true);
    assert!(wait_at_most(&mut shown, Duration::from_secs(20)).success());
    assert!(wait_at_most(&mut quiet, Duration::from_secs(20)).success());
    let output = shown_pty.read_all();
    assert!(
        output.contains("\rwaiting for 'shown' — held, "),
        "{output:?}"
    );
    assert!(
        output.ends_with("\r\x1b[K"),
        "the line is erased at the end: {output:?}"
    );
    assert_eq!(quiet_pty.read_all(), "");
}

#[test]
fn a_waiter_showing_the_status_line_keeps_its_place_in_the_queue() {
    let server = RedisServer::start();
    let lease = hold(&server, "fair", Duration::from_secs(60));
    let dir = scratch_dir("fair");
    let order = dir.join("order");
    let spawn = |letter: &str, stderr: Stdio| {
        redilock(&server)
            .args(["run", "fair", "--", "sh", "-c", "echo \"$1\" >> \"$0\""])
            .arg(&order)
            .arg(letter)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    };
    let pty = Pty::open();
    let mut first = spawn("A", pty.follower.try_clone().unwrap().into());
    wait_until("A is queued", || queue(&server, "fair").len() == 1);
    let mut second = spawn("B", Stdio::piped());
    wait_until("B is queued behind A", || queue(&server, "fair").len() == 2);
    // Waiting is the point here: a status line drawn between separate one-second lock calls
    // would have put A back in the queue, behind B, a few times by now.
    std::thread::sleep(Duration::from_millis(2500));
    Client::new(&server.url(), Options::default())
        .unwrap()
        .unlock("fair", &lease.token)
        .unwrap();
    assert!(wait_at_most(&mut first, Duration::from_secs(30)).success());
    assert!(wait_at_most(&mut second, Duration::from_secs(30)).success());
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "A\nB\n");
    let output = pty.read_all();
    assert!(
        output.contains("\rwaiting for 'fair' — held, "),
        "A waited showing the status line: {output:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A failed call says so within its own bound (one command timeout, 2 s by default); the
/// process then waits, for a bounded time, to give back what the attempt may have taken.
#[test]
fn a_failure_on_a_paused_redis_is_said_within_the_call_bound_before_the_give_back() {
    let server = RedisServer::start();
    server.pause();
    let started = Instant::now();
    let mut child = redilock(&server)
        .args(["lock", "paused", "--ttl", "60s", "--no-wait"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let said = started.elapsed();
    let status = wait_at_most(&mut child, scaled(Duration::from_secs(20)));
    server.resume();
    assert_eq!(status.code(), Some(69), "{line}");
    assert!(line.contains("did not answer in time"), "{line}");
    assert!(
        said < scaled(Duration::from_millis(3500)),
        "said after {said:?}"
    );
}

/// --command-timeout sets what one command may take: a call to a Redis paused for longer than
/// the default (2 s) still answers once Redis resumes.
#[test]
fn a_longer_command_timeout_outlasts_a_pause_longer_than_the_default() {
    let server = RedisServer::start();
    server.pause();
    let mut child = redilock(&server)
        .env("REDILOCK_COMMAND_TIMEOUT", "60s")
        .args(["state", "paused"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // What is tested is the time itself: longer than the default command timeout.
    std::thread::sleep(Duration::from_millis(2500));
    server.resume();
    let status = wait_at_most(&mut child, scaled(Duration::from_secs(30)));
    let mut said = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{said}");
    assert_eq!(said, "free\n");
}

/// `redilock` over a quorum of `masters`, each given by its own --url or by --redis, its alias
/// (every other master, so that both spellings are used).
fn redilock_quorum(masters: &[RedisServer]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_redilock"));
    command.env_remove("REDIS_URL");
    for (index, master) in masters.iter().enumerate() {
        let option = if index % 2 == 0 { "--url" } else { "--redis" };
        command.arg(option).arg(master.url());
    }
    command
}

fn start_masters(count: usize) -> Vec<RedisServer> {
    (0..count).map(|_| RedisServer::start()).collect()
}

#[test]
fn a_command_runs_under_a_quorum_of_five_while_two_masters_are_down() {
    let mut masters = start_masters(5);
    let ports: Vec<String> = masters.iter().map(|m| m.port.to_string()).collect();
    let script = format!(
        "echo \"$REDILOCK_TOKEN $REDILOCK_FENCE\"; for port in {}; do redis-cli -p $port GET job; done",
        ports.join(" ")
    );
    let run = finish(redilock_quorum(&masters).args(["run", "job", "--", "sh", "-c", &script]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut lines = run.stdout.lines();
    let (token, fence) = lines.next().unwrap().split_once(' ').unwrap();
    let fence: u64 = fence.parse().unwrap();
    assert_eq!(
        lines.collect::<Vec<_>>(),
        [token; 5],
        "every master holds the lock for the command"
    );
    for master in &masters {
        assert_eq!(master.cli(&["EXISTS", "job"]), "0", "released everywhere");
    }

    // One master crashed, one frozen (it answers nothing): 3 of 5 still grant the lock. The
    // node timeout spares waiting on the frozen one for the whole command timeout.
    // Capped by the command timeout, as every node timeout is (the CLI keeps the default one).
    let node_timeout_ms = scaled(Duration::from_secs(1))
        .min(Options::default().command_timeout)
        .as_millis();
    let node_timeout = format!("{node_timeout_ms}ms");
    masters[0].kill();
    masters[1].pause();
    let run = finish(
        redilock_quorum(&masters)
            .args(["--node-timeout", &node_timeout, "run", "job", "--"])
            .args(["sh", "-c", PROBE]),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let next_fence: u64 = run
        .stdout
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(next_fence > fence, "{next_fence} after {fence}");

    // A third down: the lock cannot be had, and the message says how each master answered.
    masters[2].kill();
    let run = finish(
        redilock_quorum(&masters)
            .args(["--node-timeout", &node_timeout, "run", "job", "--"])
            .args(["echo", "ran"]),
    );
    masters[1].resume();
    assert_eq!((run.code, run.stdout.as_str()), (69, ""), "{}", run.stderr);
    let line = error_line(&run);
    assert!(
        line.contains("lock 'job': fewer than 3 of 5 masters answered in time"),
        "{line}"
    );
    for (master, answer) in [
        (&masters[0], "refused"),
        (
            &masters[1],
            &format!("no answer within the node timeout ({node_timeout_ms} ms)"),
        ),
        (&masters[2], "refused"),
        (&masters[3], "granted"),
        (&masters[4], "granted"),
    ] {
        let named = format!("127.0.0.1:{}: ", master.port);
        let said = line
            .split(&named)
            .nth(1)
            .unwrap_or_else(|| panic!("{named}{line}"));
        assert!(
            said.split(';').next().unwrap().contains(answer),
            "{named}{answer}: {line}"
        );
    }
    for master in &masters[3..] {
        assert_eq!(master.cli(&["EXISTS", "job"]), "0", "given back");
    }
}

/// REDIS_URL lists the masters separated by whitespace, as a crontab or a unit file sets it.
#[test]
fn redis_url_may_list_the_masters_of_a_quorum() {
    let masters = start_masters(3);
    let urls: Vec<String> = masters.iter().map(RedisServer::url).collect();
    let listed = format!("{} {}\n\t{} ", urls[0], urls[1], urls[2]);
    let redilock = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_redilock"));
        command.env("REDIS_URL", &listed);
        command
    };
    let lock = finish(redilock().args(["lock", "migrate", "--ttl", "1m"]));
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    let token = lock.stdout.trim();
    for master in &masters {
        assert_eq!(master.cli(&["GET", "migrate"]), token);
    }
    let state = finish(redilock().args(["state", "migrate"]));
    assert!(state.stdout.starts_with("held, "), "{}", state.stderr);
    let unlock = finish(redilock().args(["unlock", "migrate", token]));
    assert_eq!(unlock.code, 0, "{}", unlock.stderr);
    for master in &masters {
        assert_eq!(master.cli(&["EXISTS", "migrate"]), "0");
    }
}

#[test]
fn quorums_that_cannot_be_are_usage_errors_and_the_one_set_is_counted() {
    let mut masters = start_masters(5);
    let sentinel_url = "redis+sentinel://127.0.0.1:26379/mymaster";
    let usage_error = |command: &mut Command, said: &str| {
        let finished = finish(command.args(["state", "job"]));
        assert_eq!(finished.code, 64, "{said}: {}", finished.stderr);
        let line = error_line(&finished);
        assert!(line.contains(said), "{said}: {line}");
    };
    usage_error(
        &mut redilock_quorum(&masters[..2]),
        "a quorum client needs at least 3 masters, got 2",
    );
    for quorum in ["2", "6"] {
        usage_error(
            redilock_quorum(&masters).args(["--quorum", quorum]),
            &format!("the quorum must be more than half of the 5 masters and at most all of them, got {quorum}"),
        );
    }
    usage_error(
        redilock_quorum(&masters).env("REDILOCK_QUORUM", "2"),
        "more than half of the 5 masters",
    );
    usage_error(
        redilock_quorum(&masters).args(["--node-timeout", "0ms"]),
        "the node timeout must be greater than 0",
    );
    usage_error(
        redilock_quorum(&masters[..2]).args(["--url", sentinel_url]),
        "each master of a quorum client must be one server",
    );
    for option in [["--quorum", "1"], ["--node-timeout", "100ms"]] {
        usage_error(
            redilock_quorum(&masters[..1]).args(option),
            "--quorum and --node-timeout are for a quorum of 3 or more masters",
        );
    }
    usage_error(
        redilock_quorum(&[]).env("REDIS_URL", " \n"),
        "REDIS_URL names no Redis URL",
    );
    // The quorum set is the one counted: with one master down, 4 of 5 can be had, 5 cannot.
    masters[4].kill();
    let run = |quorum: &str| {
        finish(
            redilock_quorum(&masters)
                .args(["--quorum", quorum, "run", "job", "--"])
                .args(["echo", "ran"]),
        )
    };
    let all = run("5");
    assert_eq!(all.code, 69, "{}", all.stderr);
    assert!(error_line(&all).contains("fewer than 5 of 5 masters"));
    let four = run("4");
    assert_eq!(
        (four.code, four.stdout.as_str()),
        (0, "ran\n"),
        "{}",
        four.stderr
    );
}
