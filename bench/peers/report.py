"""Writes the report of `make bench-peers` (bench/RESULTS.md) and its chart (bench/results.png)
from the medians bench/peers/run measured."""

import math
import os
import platform
import re
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)
from matplotlib import ticker  # noqa: E402

# Scenario names, as the workers take them, and the reference rows.
UNCONTENDED, CONTENDED, FANIN, WAITING, MEMORY = "uncontended", "contend", "fanin", "waiters", "memory"
ONE_CORE = "uncontended on one core"  # the uncontended scenario with Redis and the worker on one core
CONTENDED_ZERO = "contend, no think time"  # the contended scenario with hold 0 and pause 0
CRASHED = "crashed predecessor"  # libredilock C alone: a waiter whose predecessor in the queue crashed
QUORUM = "quorum"  # the results of the quorum part: scenario -> key -> metrics
FENCING = "fencing"  # libredilock C alone: the uncontended quorum cycle with and without the fencing phase
RAW, C, PYTHON_REDILOCK = "raw", "c", "python-redilock"
RAW_SCRIPTS = "raw-scripts"  # the raw baseline's client sending libredilock's scripts: a bound for any client
RAW_SCRIPTS_ROW = "raw baseline, libredilock's scripts"  # that row's label
REDILOCK, PEER = "redilock", "peer"  # the kinds of contender, besides RAW
DIRECT_CONNECTIONS = 4  # a libredilock client's direct connections (crates/redilock/src/transport/pool.rs)
NOT_APPLICABLE = "—"


def measured(results, key):
    """The median metrics of a row, or None when it did not run."""
    row = results.get(key)
    return row if isinstance(row, dict) else None


def ratio(value, reference):
    return f"{value / reference:.2f}×" if reference else NOT_APPLICABLE


def rate(value):
    return f"{value:,.0f}"


def ms(value):
    return NOT_APPLICABLE if math.isnan(value) else f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def us(value):
    return NOT_APPLICABLE if math.isnan(value) else f"{value:.1f} µs"


def table(header, lines):
    rows = [header, ["---"] * len(header), *lines]
    return "\n".join("| " + " | ".join(map(str, row)) + " |" for row in rows)


def unmeasured(rows, results, width):
    """Rows that did not run, each with its reason, padded to the table's width."""
    return [[row.label, f"not measured: {results[row.key]}", *[""] * (width - 2)]
            for row in rows if row.key in results and measured(results, row.key) is None]


def runs(metrics):
    return " / ".join(rate(v) for v in metrics["runs"])


BASELINES = {RAW: "raw", PYTHON_REDILOCK: "python-redilock"}  # the references of most tables
WAIT_BASELINES = {PYTHON_REDILOCK: "python-redilock"}  # the raw baseline does not wait
QUORUM_PEERS = {"redsync": "redsync", "redlock": "node-redlock"}  # those of the quorum part


def scenario_table(rows, results, header, cells, references=BASELINES):
    """A line per contender that ran, `cells(metrics, *references' metrics)` after its label
    (a reference's metrics are None when it did not run), then those that did not, with why."""
    reference_metrics = [measured(results, key) for key in references]
    lines = [[row.label, *cells(m, *reference_metrics)] for row in rows if (m := measured(results, row.key))]
    return table(header, lines + unmeasured(rows, results, len(header)))


def cycles_table(rows, results, redis_time=False, references=BASELINES):
    """Cycles/s and their ratio to each reference; with `redis_time`, Redis's time per cycle too
    (uncontended runs measure it)."""
    def cells(m, *reference_metrics):
        return [f"**{rate(m['cycles_per_sec'])}**", runs(m),
                *(ratio(m["cycles_per_sec"], r and r["cycles_per_sec"]) for r in reference_metrics)] + (
                    [us(m["redis_us"])] if redis_time else [])

    return scenario_table(rows, results, ["contender", "cycles/s (median)", "each run",
                                          *(f"vs {name}" for name in references.values())]
                          + (["Redis µs / cycle"] if redis_time else []), cells, references)


def contended_table(rows, results, references=WAIT_BASELINES):
    """The hand-off figures, and each reference's wait p99 over the contender's."""
    def cells(m, *reference_metrics):
        return [f"{m['cs_per_sec']:.0f}", ms(m["wait_p50"]), f"**{ms(m['wait_p99'])}**", ms(m["wait_max"]),
                ms(m["gap_p50"]), *(ratio(r["wait_p99"], m["wait_p99"]) if r else NOT_APPLICABLE
                                    for r in reference_metrics)]

    return scenario_table(rows, results, ["contender", "CS/s", "wait p50", "wait p99", "wait max", "hand-off gap p50",
                                          *(f"{name}'s p99 ÷ this" for name in references.values())],
                          cells, references)


def waiters_table(rows, results):
    def cells(m, raw, python):
        return [rate(m["commands_per_sec"]), f"**{m['commands_per_acq']:.1f}**", f"{m['requests_per_acq']:.1f}",
                f"**{us(m['usec_per_acq'])}**", ratio(m["commands_per_acq"], python and python["commands_per_acq"]),
                f"{m['seconds']:.1f} s", m["breakdown"]]

    return scenario_table(rows, results, ["contender", "commands/s", "commands / acquisition", "requests / acquisition",
                                          "Redis µs / acquisition", "commands vs python-redilock", "duration",
                                          "most executed (one run)"], cells)


def crashed_section(crashed, runs):
    if crashed is None:
        return "Not measured: redilock C was not among the contenders of this run."
    if not isinstance(crashed, dict):
        return f"Not measured: {crashed}."
    lines = [[f"{crashed['label']}, {what}", ms(crashed[key]["p50"]), f"**{ms(crashed[key]['max'])}**"]
             for key, what in (("crash", "A killed: release → B's acquisition"),
                               ("reference", "no crash: release → A's acquisition"))]
    return table(["measurement", f"median of {runs}", "max"], lines)


def memory_table(rows, results):
    def cells(m, raw, python):
        return [f"{m['cycles']:,}", f"{m['rss_1k']:,} KiB", f"{m['rss_end']:,} KiB", f"**{m['growth']:+,} KiB**"]

    return scenario_table(rows, results, ["contender", "cycles", "RSS after 1,000", "RSS at the end", "growth"], cells)


def single_server_ratios(quorum_rows, quorum, single):
    """Each quorum contender's uncontended rate over the same library's on one server."""
    pairs = [(row.label, m["cycles_per_sec"], one["cycles_per_sec"]) for row in quorum_rows
             if (m := measured(quorum, row.key)) and (one := measured(single, row.key))]
    if not pairs:
        return ""
    return ("Against the same library on one server (section 1, same run): "
            + "; ".join(f"{label}: {ratio(quorum_rate, single_rate)}" for label, quorum_rate, single_rate in pairs)
            + ".")


def fencing_section(fencing, masters):
    f = measured(fencing, C)
    if f is None:
        return f"Not measured: {fencing.get(C, 'redilock C was not among the contenders of this run')}."
    lines = [[what, f"**{rate(f[f'{kind}_cycles_per_sec'])}**", us(f[f"{kind}_p50_us"])] for kind, what in (
        ("agreeing", f"the {masters} counters agreeing: no fencing phase"),
        ("one_ahead", "one master ahead: the fencing phase on every acquisition"))]
    return (table(["redilock C, uncontended cycle", "cycles/s (median)", "cycle p50"], lines)
            + f"\n\nThe fencing phase costs **{us(f['cost_us'])} per acquisition** (the difference of the p50s, "
            f"median of the runs): the cycle runs at "
            f"**{ratio(f['one_ahead_cycles_per_sec'], f['agreeing_cycles_per_sec'])}** the rate without it. "
            f"After {f['written_back']:.1%} of the cycles with one master ahead (median), all {masters} masters "
            "held the number the lock call returned: the write-back had reached them.")


def valgrind_section(valgrind):
    summaries, command = valgrind
    if summaries is None:
        return f"valgrind did not run: {command}."
    kinds = ["definitely lost", "indirectly lost", "possibly lost", "still reachable"]
    lines = [["parent" if i == 0 else f"child {i}", *(f"{s[k]:,} B" for k in kinds), s["errors"]]
             for i, s in enumerate(summaries)]
    origins = sorted({origin for s in summaries for origin in s["possibly lost at"]})
    notes = "".join(f"\n- possibly lost, allocated at: `{origin}`" for origin in origins)
    return (f"`{command}` (REDIS_URL set; the demo forks two workers with the lock and two without; "
            f"one summary per process; an error here is a leak record that valgrind reports):\n\n"
            + table(["process", *kinds, "errors"], lines) + ("\n" + notes if notes else ""))


# ---- targets --------------------------------------------------------------------------------

WHY = {
    "uncontended raw": (
        "a libredilock cycle took {c_us:.0f} µs here against {raw_us:.0f} µs for the raw round trips (a bare SET NX "
        "and a compare-and-delete script), Redis's own time {c_redis} against {raw_redis} of it (INFO commandstats). "
        "The acquire script also looks at the waiters' queue and at the withdrawn tokens and numbers the "
        "acquisition (one EXISTS for the queue and the withdrawn tokens, SET NX, then TIME and GETSET for a "
        "fencing number that never falls below the Redis clock) and the release script looks at the queue "
        "before it deletes (GET, EXISTS, DEL): two "
        "script calls where the raw baseline makes a plain SET and one script; the rest is the client's own "
        "work per call. `make bench`, whose raw row sends the lock's own scripts, shows the client's share alone"),
    "uncontended peers": (
        "{best} asks Redis for less per cycle (no fencing number, no look at a queue{redis}){spin}"),
    "spin": (
        ", and the Go runtime spins a little before it sleeps, which hides the slow wake-up of an idle core "
        "on this virtual machine; a single-threaded blocking client such as the C row pays that wake-up on "
        "every round trip (compare the loopback round trip under Machine)"),
    "p99": (
        "the p99 wait is {handoffs:.0f} critical sections at the {period:.1f} ms each measured. Waiters are "
        "served in arrival order and a release hands the lock straight to the first in line, so a wait should "
        "last about one critical section per process ahead in the queue (3 here); much more means a hand-over "
        "was lost and the waiter fell back to the holder's TTL or its 10 s safety net{python}"),
    "p99 python": (
        "; python-redilock's p99 ({python}) is low when fewer than 1 in 100 of its requests finds the lock "
        "held (each of those waits at least its 0.25 s poll interval), as a short run may show"),
    "gap": (
        "a hand-off is the release's way to Redis (its script hands the lock over and publishes in one step), "
        "the pub/sub message's way to the waiter's client and the wake-up of the waiting thread; on this virtual "
        "machine an idle core is slow to wake (see Machine)"),
    "fanin peers": (
        "{how}; libredilock's calls each borrow one of its {direct} direct connections and do their own I/O (no thread "
        "hand-off), and a call that finds them all busy is pipelined on the background thread's multiplexed "
        "connection, which costs two thread hand-offs; and its two scripts per cycle run more commands inside "
        "Redis than the peer's {peer_work}"),
    "fanin raw": (
        "the raw baseline pipelines 16 tasks' SETs and scripts on one multiplexed connection; libredilock's 16 "
        "threads share {direct} direct connections, and the calls that find them all busy go through the background "
        "thread's multiplexed connection (two thread hand-offs each); its scripts also do more inside Redis (see "
        "the uncontended targets)"),
    "waiters commands": (
        "a waiter pays to join the queue (one acquire script: EXISTS, GET, RPUSH, and SET NX, PEXPIRE and PTTL "
        "for the first in line), to be handed the lock by its predecessor's release (EXISTS, LRANGE, LPOP, TIME and "
        "GETSET of the fencing number, PUBLISH, SET, a PUBLISH telling the next in line it is first, PEXPIRE) "
        "and its own release, besides "
        "the scripts themselves; more than that means waiters looked again: the first in line when the holder's "
        "TTL ran out, or the 10 s safety net ({breakdown})"),
    "waiters requests": (
        "a waiter sends its joining attempt and its release, and its client subscribes to its wake-up channel "
        "once; the rest are re-checks (the first in line at the holder's expiry, the 10 s safety net) or the "
        "set-up of the pub/sub connection, which a client opens at its first wait"),
    "waiters usec": (
        "on a Redis that idles between requests, as here, a script call costs far more than in a busy loop (its "
        "caches are cold: {c_script} per call here against a few µs in the uncontended cycles), and Redis's time "
        "mostly counts script calls: libredilock makes {c_scripts:.1f} per acquisition (joining the queue and "
        "releasing; being handed the lock runs inside the predecessor's release), {best} {best_scripts:.1f} "
        "(at {best_script} each) and {best_plain:.1f} other requests (its polls, at {best_plain_us} each). A "
        "poller pays for every poll and a queued waiter for none, so the balance turns with a longer hold"),
    "crashed": (
        "a release skips a waiter whose client no longer listens on its channel (Redis counts the listeners), so "
        "B should have the lock within a hand-off; a longer time means the lock went to the dead waiter A and B "
        "only got it when A's TTL (10 s) ran out, or B waited for its 10 s safety net"),
    "one core": (
        "on one core Redis's time and the client's add up; a libredilock cycle took {c_us:.0f} µs against "
        "{raw_us:.0f} µs for the raw round trips, of which Redis's own time (INFO commandstats) was {c_redis} "
        "against {raw_redis}: the acquire script looks at the queue and the withdrawn tokens and numbers the "
        "acquisition (EXISTS, SET NX, TIME, GETSET) and the release script looks at the queue (GET, EXISTS, "
        "DEL), two script calls against a plain SET and one script; the rest is the client's own work and the "
        "system calls of its round trips"),
    "memory": "the RSS kept growing over the cycles: a leak per cycle, or caches that had not settled",
}


FANIN_HOW = {  # how a peer that leads the fan-in serves 16 callers on one client
    "redlock": "Node.js sends the 16 tasks' commands pipelined on one connection, as the raw baseline does",
    "redsync": ("go-redis gives each goroutine a pooled connection of its own (10 per core by default), and "
                "goroutines switch without a thread hand-off"),
}


def scripts_bound(results, least):
    """What the raw baseline's own client made sending libredilock's two scripts, beside the
    target share of raw `least`: how much of redilock C's gap the scripts leave to any client."""
    bound, raw, c = results.get(RAW_SCRIPTS), results.get(RAW), results.get(C)
    if not (bound and raw and c):
        return ""
    share = bound["cycles_per_sec"] / raw["cycles_per_sec"]
    shown = f"{share:.3f}" if round(share, 2) == least else f"{share:.2f}"  # 0.897, not 0.90, below 0.9
    verdict = (f"with these scripts even that client stays below {least:g}×" if share < least
               else f"that client reaches {least:g}× with these scripts")
    return (f". The raw baseline's own client, sending libredilock's acquire and release scripts instead of its "
            f"SET and compare-and-delete, made {shown}× raw in the same run (row \"{RAW_SCRIPTS_ROW}\"): "
            f"{verdict}, and the rest of the gap, {shown}× against redilock C's "
            f"{c['cycles_per_sec'] / raw['cycles_per_sec']:.2f}×, is libredilock's client")


def targets(rows, results):
    """(met, what was measured, why when missed) per target of the issue."""
    out = []
    for scenario, where, least in ((UNCONTENDED, "cores free", 0.9), (ONE_CORE, "Redis and the worker on one core", 0.8)):
        u = {k: v for k, v in results[scenario].items() if isinstance(v, dict)}
        c, raw = u.get(C), u.get(RAW)
        if c and raw:
            share = c["cycles_per_sec"] / raw["cycles_per_sec"]
            figures = dict(c_us=1e6 / c["cycles_per_sec"], raw_us=1e6 / raw["cycles_per_sec"],
                           c_redis=us(c["redis_us"]), raw_redis=us(raw["redis_us"]))
            redis_time = (f" (Redis's time per cycle: {figures['c_redis']} for redilock C, {figures['raw_redis']} "
                          "for raw)") if scenario == ONE_CORE else ""
            out.append((share >= least, f"Uncontended ≥ {least:g}× raw ({where}): redilock C at {share:.2f}× raw"
                        + redis_time,
                        WHY["one core" if scenario == ONE_CORE else "uncontended raw"].format(**figures)
                        + scripts_bound(u, least)))
        peers = [row for row in rows if row.kind == PEER and row.key in u]
        if c and peers:
            best = max(peers, key=lambda row: u[row.key]["cycles_per_sec"])
            ahead = c["cycles_per_sec"] > u[best.key]["cycles_per_sec"]
            spin = WHY["spin"] if best.key == "redsync" and scenario == UNCONTENDED else ""
            out.append((ahead, f"Uncontended ahead of every peer ({where}): redilock C "
                        f"{rate(c['cycles_per_sec'])}/s, best peer {best.label} {rate(u[best.key]['cycles_per_sec'])}/s",
                        WHY["uncontended peers"].format(best=best.label, spin=spin, redis="" if math.isnan(
                            u[best.key]["redis_us"]) else f": {us(u[best.key]['redis_us'])} of Redis's time per cycle "
                            f"against {us(c['redis_us'])} for libredilock")))
    con = results[CONTENDED]
    c, python = measured(con, C), measured(con, PYTHON_REDILOCK)
    if c and python:
        lower = python["wait_p99"] / c["wait_p99"]
        period = 1000 / c["cs_per_sec"]
        out.append((lower >= 40, f"Contended wait p99 ≥ 40× lower than python-redilock's: {lower:.1f}× lower "
                    f"({ms(c['wait_p99'])} vs {ms(python['wait_p99'])})",
                    WHY["p99"].format(handoffs=c["wait_p99"] / period, period=period, python=WHY["p99 python"].format(
                        python=ms(python["wait_p99"])) if python["wait_p99"] < 100 else "")))
    if c:
        out.append((c["gap_p50"] <= 1, f"Hand-off gap p50 ≤ 1 ms: {ms(c['gap_p50'])}", WHY["gap"]))
    fan = {k: v for k, v in results[FANIN].items() if isinstance(v, dict)}
    c, raw = fan.get(C), fan.get(RAW)
    peers = [row for row in rows if row.kind == PEER and row.key in fan]
    if c and peers:
        best = max(peers, key=lambda row: fan[row.key]["cycles_per_sec"])
        peer_work = ("lock and release scripts" if best.key in ("redlock", "redisson")
                     else "plain SET NX and release script")
        out.append((c["cycles_per_sec"] > fan[best.key]["cycles_per_sec"],
                    f"Fan-in (16 threads on one client) ahead of every peer: redilock C {rate(c['cycles_per_sec'])}/s, "
                    f"best peer {best.label} {rate(fan[best.key]['cycles_per_sec'])}/s",
                    WHY["fanin peers"].format(how=FANIN_HOW.get(best.key, f"{best.label} spreads the 16 callers over "
                                                                              "connections of its own"),
                                              direct=DIRECT_CONNECTIONS, peer_work=peer_work)))
    if c and raw:
        share = c["cycles_per_sec"] / raw["cycles_per_sec"]
        out.append((share >= 0.6, f"Fan-in ≥ 0.6× raw: redilock C at {share:.2f}× raw",
                    WHY["fanin raw"].format(direct=DIRECT_CONNECTIONS) + scripts_bound(fan, 0.6)))
    wait = {k: v for k, v in results[WAITING].items() if isinstance(v, dict)}
    c = wait.get(C)
    if c:
        out.append((c["commands_per_acq"] <= 20, f"Waiters' Redis load ≤ 20 commands per acquisition (Lua's "
                    f"included): {c['commands_per_acq']:.1f} commands", WHY["waiters commands"].format(
                        breakdown="most executed: " + c["breakdown"])))
        out.append((c["requests_per_acq"] <= 4, f"Waiters' requests ≤ 4 per acquisition: "
                    f"{c['requests_per_acq']:.1f} requests", WHY["waiters requests"]))
        others = [row for row in rows if row.kind == PEER and row.key in wait]
        if others:
            best = min(others, key=lambda row: wait[row.key]["usec_per_acq"])
            out.append((c["usec_per_acq"] < wait[best.key]["usec_per_acq"],
                        f"Waiters' Redis time per acquisition the lowest of all contenders: redilock C "
                        f"{us(c['usec_per_acq'])}, lowest peer {best.label} {us(wait[best.key]['usec_per_acq'])}",
                        WHY["waiters usec"].format(
                            best=best.label, c_script=us(c["usec_per_script"]), c_scripts=c["scripts_per_acq"],
                            best_scripts=wait[best.key]["scripts_per_acq"],
                            best_script=us(wait[best.key]["usec_per_script"]),
                            best_plain=wait[best.key]["plain_per_acq"],
                            best_plain_us=us(wait[best.key]["usec_per_plain"]))))
    crashed = results.get(CRASHED)
    if isinstance(crashed, dict):
        worst = crashed["crash"]["max"]
        out.append((worst <= 1000, f"A waiter whose predecessor crashed at the head of the queue gets the lock "
                    f"within 1 s of the release: at most {ms(worst)} over {crashed['crash']['runs']} runs (median "
                    f"{ms(crashed['crash']['p50'])}; {ms(crashed['reference']['p50'])} without a crash)",
                    WHY["crashed"]))
    c = measured(results[MEMORY], C)
    if c:
        out.append((c["growth"] < 1024, f"Memory growth < 1 MiB over {c['cycles']:,} cycles: {c['growth']:+,} KiB",
                    WHY["memory"]))
    return out


def targets_section(rows, results):
    lines = []
    for met, text, why in targets(rows, results):
        lines.append(f"- **{'met' if met else 'missed'}**: {text}." + ("" if met else f" Why: {why}."))
    return "\n".join(lines)


# ---- machine --------------------------------------------------------------------------------

def command_output(*command):
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return (result.stdout + result.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "not found"


def machine(context):
    cpuinfo = Path("/proc/cpuinfo").read_text()
    cpu = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    tools = {
        "redis-server": context["redis"],
        "Python": platform.python_version(),
        "Go": command_output("go", "env", "GOVERSION"),
        "Node.js": command_output("node", "--version"),
        "Java": command_output("java", "-version").splitlines()[0],
        "Ruby": command_output("ruby", "-e", "print RUBY_VERSION"),
        "rustc": command_output("rustc", "--version"),
        "cc": command_output("cc", "--version").splitlines()[0],
    }
    return "\n".join([
        f"- CPU: {cpu.group(1) if cpu else platform.processor()}, {os.cpu_count()} logical cores",
        f"- memory: {int(memory.group(1)) / 2**20:.1f} GiB" if memory else "- memory: ?",
        f"- kernel: {' '.join(platform.uname()[i] for i in (0, 2, 4))}",
        f"- load average (1, 5, 15 min) before: {' '.join(context['load_before'])}, "
        f"after: {' '.join(context['load_after'])}",
        f"- loopback round trip at the start, one connection: {context['ping']} (redis-benchmark). On this "
        "virtual machine an idle core is slow to wake, so a round trip between two processes on different "
        "cores costs more when the machine is idle than when it is busy: figures vary with load",
        "- " + ", ".join(f"{name} {version}" for name, version in tools.items()),
    ])


# ---- chart ----------------------------------------------------------------------------------

COLOURS = {RAW: "#9e9e9e", REDILOCK: "#1f77b4", PEER: "#ff7f0e"}


def bars(axis, rows, results, metric, title, unit, log=False, second=None):
    """Horizontal bars of `metric`, one per contender that ran; with `second` (the same
    scenario measured another way), a paler bar of it under each."""
    points = [row for row in rows if measured(results, row.key)]
    height, shift = (0.4, -0.2) if second else (0.8, 0)
    for y, row in enumerate(points):
        for offset, figures, alpha in ((shift, results, 1.0), (-shift, second, 0.4)):
            if figures is None or not measured(figures, row.key):
                continue
            v = figures[row.key][metric]
            axis.barh(y + offset, v, height=height, color=COLOURS[row.kind], alpha=alpha)
            axis.text(v, y + offset, f" {v:,.0f}" if v >= 10 else f" {v:.2f}", va="center", fontsize=7)
    axis.set_yticks(range(len(points)), [row.label for row in points])
    axis.invert_yaxis()
    axis.set_title(title, fontsize=10)
    axis.set_xlabel(unit, fontsize=9)
    axis.tick_params(labelsize=8)
    if log:
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())


def chart(rows, quorum_rows, results, context, path):
    figure, axes = plt.subplots(4, 2, figsize=(12, 16))
    bars(axes[0][0], rows, results[UNCONTENDED], "cycles_per_sec", "1. Uncontended lock + unlock (higher is better)",
         "cycles/s; pale: Redis and the worker on one core", second=results[ONE_CORE])
    bars(axes[0][1], rows, results[CONTENDED], "wait_p99",
         "2. Contended hand-off, 4 processes: wait p99 (lower is better)", "ms, log scale", log=True)
    bars(axes[1][0], rows, results[CONTENDED_ZERO], "cs_per_sec",
         "2. The same with no think time: critical sections/s (higher is better)", "critical sections/s")
    bars(axes[1][1], rows, results[FANIN], "cycles_per_sec", "3. Fan-in, 16 threads on one client (higher is better)",
         "cycles/s")
    hold_seconds, masters = context["hold_seconds"], context["masters"]
    bars(axes[2][0], rows, results[WAITING], "commands_per_acq",
         f"4. 16 waiters, {hold_seconds:g} s hold: commands per acquisition (lower is better)", "commands")
    bars(axes[2][1], rows, results[WAITING], "usec_per_acq",
         f"4. 16 waiters, {hold_seconds:g} s hold: Redis time per acquisition (lower is better)", "µs")
    quorum = results[QUORUM]
    bars(axes[3][0], quorum_rows, quorum[UNCONTENDED], "cycles_per_sec",
         f"7. Quorum of {masters} masters: uncontended lock + unlock (higher is better)", "cycles/s")
    bars(axes[3][1], quorum_rows, quorum[CONTENDED], "wait_p99",
         f"7. Quorum of {masters} masters, 4 processes: wait p99 (lower is better)", "ms, log scale", log=True)
    figure.suptitle("redilock and its peers, one machine and one redis-server (7: five more), medians "
                    "(blue: redilock, orange: peers, grey: raw baseline)", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---- the report -----------------------------------------------------------------------------

def contenders_table(rows):
    return table(["contender", "library and version", "waiting (library defaults)"],
                 [[row.label, row.library, row.waiting] for row in rows])


def kept_notes(markdown_path):
    """The "## Notes" section of the report being replaced, written by hand (one-off
    measurements this run does not make), with its heading; "" when there is none."""
    if not markdown_path.exists():
        return ""
    found = re.search(r"^## Notes\n.*?(?=^## )", markdown_path.read_text(), re.M | re.S)
    return found.group(0) if found else ""


def write_report(rows, quorum_rows, results, valgrind, context, markdown_path, chart_path):
    chart(rows, quorum_rows, results, context, chart_path)
    quorum = results[QUORUM]
    notes = kept_notes(markdown_path)
    text = f"""# redilock next to its peers

Measured by `make bench-peers` on {context['started']} ({context['minutes']:.0f} minutes), against one private
redis-server on loopback that every contender shares (section 7: {context['masters']} more, the masters of a
quorum), contenders interleaved run by run. Each figure
is the median of {context['runs']} runs (memory: one run); ratios are to the raw baseline and to python-redilock,
the design redilock grew from. Nothing here is asserted by a test.

![bench results](results.png)

## Machine

{machine(context)}

## Contenders

Each one waits the way its library does by default; that is the point of the comparison. The raw
baseline issues the same round trips as a lock, with nothing else: `SET name token NX PX 10000`,
then `EVALSHA` of the compare-and-delete script, with the Rust redis crate (one blocking connection;
for the fan-in, tasks on one multiplexed connection, tokio with one worker thread per core).

{contenders_table(rows)}

Workers: `bench/c_bench.c`, `bench/cpp_bench.cpp`, `bindings/ruby/bench/uncontended.rb` and
`bench/peers/workers/` (one per language, libredilock's Go binding and redsync sharing the Go one;
all with the same protocol); the peers are installed from their registries by `bench/peers/install` into the
git-ignored `bench/.peers`, pinned by the manifests beside the workers. The Node.js and Java
workers run one second of cycles before counting, for their JIT.

## 1. Uncontended

One worker process, one client, one name: lock (one attempt) + unlock, as fast as it goes, for
{context['seconds']:g} s per run. Redis µs / cycle: Redis's time for the requests the worker sent
(`usec` of `INFO commandstats` from a `CONFIG RESETSTAT` before the run, the commands a script ran
taken out as its own time includes them: they are found by `MONITOR` over a short probe of the
cycle), over the cycles counted; not given for the workers that warm up uncounted first.

{cycles_table(rows, results[UNCONTENDED], redis_time=True)}

The same on one core: redis-server and the worker pinned to one core, so that no round trip waits
for an idle core to wake up (see Machine) and the figure weighs the CPU work of a cycle, client and
server together. Node.js, Java and Go spread over their own threads on that one core too.

{cycles_table(rows, results[ONE_CORE], redis_time=True)}

## 2. Contended hand-off

4 processes of the same contender on one name, each: lock (waiting), hold 2 ms, unlock, pause 2 ms,
for {context['contend_seconds']:g} s. Counted over the window in which all 4 run, each
process's first critical section (connection set-up, JIT) left out. Wait: from asking to holding.
Hand-off gap: the lock's idle time while it is wanted, from a release (stamped just before the
unlock call) to the next acquisition, counted when another process was waiting at that release.
All workers stamp with CLOCK_MONOTONIC.

{contended_table(rows, results[CONTENDED])}

The same with no think time (hold 0, pause 0: each process asks again as soon as it has released),
where a lock that lets a caller barge tends to stay with the process that just released it:
libredilock fair (its default) and not fair (`redilock_options_set_fair(options, false)`, the C
worker with `C_BENCH_FAIR=0`), next to the peers. As a process may be kept out for long
stretches here, even until the others are done, the waits are those of every request made while
all 4 run, each process's first included, however late it got the lock; CS/s counts the
acquisitions while all 4 run.

{contended_table(rows, results[CONTENDED_ZERO])}

## 3. Fan-in on one client

16 threads (goroutines for Go, async tasks for Node.js) share one client, each locking and unlocking
its own name, for {context['seconds']:g} s per run; cycles/s of all of them together,
next to the raw baseline with 16 tasks on one connection.

{cycles_table(rows, results[FANIN])}

## 4. Redis load from waiters

One process per contender: a holder takes one name; 16 waiters, each with its own client (as 16
services would have), connected and warmed up beforehand, then ask for it while the holder keeps it
for {context['hold_seconds']:g} s; after the release each waiter takes the lock once
and releases it. Counted from `CONFIG RESETSTAT` at the start of the wait until the last waiter is
done: commands executed by Redis (`INFO commandstats`, the commands a Lua script runs included),
per second and per waiter acquisition (16), requests that clients sent (`MONITOR` lines that
are not Lua's), and Redis's time per acquisition: the `usec` of `INFO commandstats` for those
requests (a script's time includes the commands it runs, which commandstats also counts on their
own: those are taken out by Lua's share of each command's `MONITOR` lines). `MONITOR` watches a
run of its own: Redis feeds it each command a script runs inside the script's time (which it
would triple for a script of several commands), so each run takes its figures from three more runs
without it: the one with the median Redis time, which swings from run to run. That time depends on
how busy Redis is: between the waiters' requests it idles, and a script call then takes much longer
than in the tight loop of section 1 (cold caches), so the column weighs script calls above all.

{waiters_table(rows, results[WAITING])}

## 5. Memory

RSS (VmRSS) of one process holding one client, after 1,000 uncontended cycles and after
{context['memory_cycles']:,}{'' if context['memory_cycles'] >= 1_000_000 else ' (fewer than 1 M: at the C rate measured here, 1 M cycles would exceed the time budget of the run)'}.

{memory_table(rows, results[MEMORY])}

{valgrind_section(valgrind)}

## 6. A crashed waiter at the head of the queue

redilock C alone (the peers keep no queue). A holder (one process) holds a name; waiter A
(another process) asks for it and is first in the queue, waiter B (a third process) second, each
with its own client (the driver polls the queue's length, 1 then 2). A is killed with SIGKILL and,
once Redis has dropped its connections, the holder releases: the time from the release (stamped
just before the unlock call) to B's acquisition, against the same without the kill (to A's
acquisition), {context['crash_runs']} runs of each, interleaved.

{crashed_section(results[CRASHED], context['crash_runs'])}

## 7. Quorum ({context['masters']} masters)

The libraries that lock over independent masters (Redlock), each with one client over
{context['masters']} more private redis-servers on loopback, with no replication between them: a lock is held
when a majority of them ({context['masters'] // 2 + 1}) granted it, each library's default. The workers and
scenarios are those of sections 1 and 2, with the {context['masters']} URLs, separated by spaces, as their URL
argument; the ratios are to redsync and node-redlock in the same run.

{contenders_table(quorum_rows)}

Uncontended: one worker process, lock (one attempt) + unlock, {context['seconds']:g} s per run.

{cycles_table(quorum_rows, quorum[UNCONTENDED], references=QUORUM_PEERS)}

{single_server_ratios(quorum_rows, quorum[UNCONTENDED], results[UNCONTENDED])}

Contended hand-off: 4 processes on one name, hold 2 ms, pause 2 ms, {context['contend_seconds']:g} s, counted
as in section 2.

{contended_table(quorum_rows, quorum[CONTENDED], references=QUORUM_PEERS)}

The fencing phase: each master that grants a lock numbers the acquisition with its own fencing
counter; libredilock takes the highest number and, when fewer than a quorum of the masters that
granted it already have that number, writes it back to the others, an extra round trip. While
the masters all grant, their counters stay equal and no cycle after the first needs it. The C worker's `fencing`
mode times each uncontended cycle (the lock and unlock calls alone) and, before each cycle,
untimed, sets the lock's fencing counter on every master to one value above every Redis clock:
every other cycle all the same (the counters agree, no write-back), in between with one master
1,000,000 ahead (it alone has the highest number, so the acquisition writes it back to the other
{context['masters'] - 1}). The two kinds alternate in one process, so that other work on the machine slows both
alike; {context['seconds']:g} s per run.

{fencing_section(quorum[FENCING], context['masters'])}

## Targets

{targets_section(rows, results)}

{notes}## Reproduce

```sh
make bench-peers
make bench-fanin   # the fan-in breakdown under Notes; prints its table, writes nothing
```

It builds libredilock and its bench workers, runs `bench/peers/install` then `bench/peers/run`,
and rewrites this file and `results.png`. `PEERS_RUNS`, `PEERS_SECONDS`, `PEERS_CONTEND_SECONDS`,
`PEERS_HOLD_SECONDS`, `PEERS_MEMORY_CYCLES` and `PEERS_CRASH_RUNS` tune it. The machine was shared with other work
when the load average above is high: figures then move between runs, ratios less so.
"""
    markdown_path.write_text(text)
