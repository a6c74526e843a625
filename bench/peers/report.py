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
RAW, C, PYTHON_REDILOCK = "raw", "c", "python-redilock"
REDILOCK, PEER = "redilock", "peer"  # the kinds of contender, besides RAW
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


def table(header, lines):
    rows = [header, ["---"] * len(header), *lines]
    return "\n".join("| " + " | ".join(map(str, row)) + " |" for row in rows)


def unmeasured(rows, results, width):
    """Rows that did not run, each with its reason, padded to the table's width."""
    return [[row.label, f"not measured: {results[row.key]}", *[""] * (width - 2)]
            for row in rows if row.key in results and measured(results, row.key) is None]


def runs(metrics):
    return " / ".join(rate(v) for v in metrics["runs"])


def scenario_table(rows, results, header, cells):
    """A line per contender that ran, `cells(metrics, raw, python_redilock)` after its label
    (the references are None when they did not run), then those that did not, with why."""
    raw, python = measured(results, RAW), measured(results, PYTHON_REDILOCK)
    lines = [[row.label, *cells(m, raw, python)] for row in rows if (m := measured(results, row.key))]
    return table(header, lines + unmeasured(rows, results, len(header)))


def cycles_table(rows, results):
    def cells(m, raw, python):
        return [f"**{rate(m['cycles_per_sec'])}**", runs(m), ratio(m["cycles_per_sec"], raw and raw["cycles_per_sec"]),
                ratio(m["cycles_per_sec"], python and python["cycles_per_sec"])]

    return scenario_table(rows, results, ["contender", "cycles/s (median)", "each run", "vs raw", "vs python-redilock"],
                          cells)


def contended_table(rows, results):
    def cells(m, raw, python):
        return [f"{m['cs_per_sec']:.0f}", ms(m["wait_p50"]), f"**{ms(m['wait_p99'])}**", ms(m["wait_max"]),
                ms(m["gap_p50"]), ratio(python["wait_p99"], m["wait_p99"]) if python else NOT_APPLICABLE]

    return scenario_table(rows, results, ["contender", "CS/s", "wait p50", "wait p99", "wait max", "hand-off gap p50",
                                          "python-redilock's p99 ÷ this"], cells)


def waiters_table(rows, results):
    def cells(m, raw, python):
        return [rate(m["commands_per_sec"]), f"**{m['commands_per_acq']:.1f}**", f"{m['requests_per_acq']:.1f}",
                ratio(m["commands_per_acq"], python and python["commands_per_acq"]), f"{m['seconds']:.1f} s",
                m["breakdown"]]

    return scenario_table(rows, results, ["contender", "commands/s", "commands / acquisition", "requests / acquisition",
                                          "vs python-redilock", "duration", "most executed (one run)"], cells)


def memory_table(rows, results):
    def cells(m, raw, python):
        return [f"{m['cycles']:,}", f"{m['rss_1k']:,} KiB", f"{m['rss_end']:,} KiB", f"**{m['growth']:+,} KiB**"]

    return scenario_table(rows, results, ["contender", "cycles", "RSS after 1,000", "RSS at the end", "growth"], cells)


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
        "a libredilock cycle took {c_us:.0f} µs here against {raw_us:.0f} µs for the raw round trips (a bare "
        "SET NX and a compare-and-delete script). Part of the difference is Redis's extra work: the acquire "
        "script also looks at the waiters' queue and numbers the acquisition (LINDEX, SET, INCR) and the "
        "release script looks up the next waiter to wake (GET, DEL, LINDEX), two Lua calls where the raw "
        "baseline makes one; the rest is the client's own work per call. `make bench`, whose raw row sends "
        "the lock's own scripts, shows the client's share alone"),
    "uncontended peers": (
        "{best} issues the bare round trips (no fencing number, no wake-up publication){spin}"),
    "spin": (
        ", and the Go runtime spins a little before it sleeps, which hides the slow wake-up of an idle core "
        "on this virtual machine; a single-threaded blocking client such as the C row pays that wake-up on "
        "every round trip (compare the loopback round trip under Machine)"),
    "p99": (
        "the p99 wait is {handoffs:.0f} hand-offs at the {period:.1f} ms per critical section measured. "
        "Waiters are served in arrival order, so a wait should last about one hand-off per process ahead "
        "in the queue; more means wake-ups were missed and waiters fell back to their re-check interval"),
    "gap": "the hand-off includes the release round trip, the pub/sub message and the winner's attempt",
    "waiters": (
        "each libredilock waiter re-checks the lock every retry interval (250 ms by default) as a safety net "
        "for a lost wake-up, and each re-check also keeps its place in the queue: one request, but a script "
        "that runs up to 9 commands inside Redis (TIME, LINDEX, ZSCORE, GET, ZADD, two PEXPIREs, PTTL). A "
        "release wakes only the next waiter, so there is no herd: one client for all waiters costs about "
        "what 16 clients cost. The row with a 10 s retry interval removes the re-checks"),
    "memory": "the RSS kept growing over the cycles: a leak per cycle, or caches that had not settled",
}


def targets(rows, results):
    """(met, what was measured, why when missed) per target of the issue."""
    out = []
    for scenario, where in ((UNCONTENDED, "cores free"), (ONE_CORE, "Redis and the worker on one core")):
        u = {k: v for k, v in results[scenario].items() if isinstance(v, dict)}
        c, raw = u.get(C), u.get(RAW)
        if c and raw:
            share = c["cycles_per_sec"] / raw["cycles_per_sec"]
            out.append((share >= 0.9, f"Uncontended ≥ 0.9× raw ({where}): redilock C at {share:.2f}× raw",
                        WHY["uncontended raw"].format(c_us=1e6 / c["cycles_per_sec"],
                                                      raw_us=1e6 / raw["cycles_per_sec"])))
        peers = [row for row in rows if row.kind == PEER and row.key in u]
        if c and peers:
            best = max(peers, key=lambda row: u[row.key]["cycles_per_sec"])
            ahead = c["cycles_per_sec"] > u[best.key]["cycles_per_sec"]
            spin = WHY["spin"] if best.key == "redsync" and scenario == UNCONTENDED else ""
            out.append((ahead, f"Uncontended ahead of every peer ({where}): redilock C "
                        f"{rate(c['cycles_per_sec'])}/s, best peer {best.label} {rate(u[best.key]['cycles_per_sec'])}/s",
                        WHY["uncontended peers"].format(best=best.label, spin=spin)))
    con = results[CONTENDED]
    c, python = measured(con, C), measured(con, PYTHON_REDILOCK)
    if c and python:
        lower = python["wait_p99"] / c["wait_p99"]
        period = 1000 / c["cs_per_sec"]
        out.append((lower >= 20, f"Contended wait p99 ≥ 20× lower than python-redilock's: {lower:.1f}× lower "
                    f"({ms(c['wait_p99'])} vs {ms(python['wait_p99'])})",
                    WHY["p99"].format(handoffs=c["wait_p99"] / period, period=period, random=11 * period)))
    if c:
        out.append((c["gap_p50"] <= 1, f"Hand-off gap p50 ≤ 1 ms: {ms(c['gap_p50'])}", WHY["gap"]))
    c = measured(results[WAITING], C)
    if c:
        out.append((c["commands_per_acq"] <= 4, f"Waiters' Redis load ≤ 4 commands per acquisition: "
                    f"{c['commands_per_acq']:.1f} commands ({c['requests_per_acq']:.1f} requests)", WHY["waiters"]))
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


def chart(rows, results, hold_seconds, path):
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    bars(axes[0][0], rows, results[UNCONTENDED], "cycles_per_sec", "1. Uncontended lock + unlock (higher is better)",
         "cycles/s; pale: Redis and the worker on one core", second=results[ONE_CORE])
    bars(axes[0][1], rows, results[CONTENDED], "wait_p99",
         "2. Contended hand-off, 4 processes: wait p99 (lower is better)", "ms, log scale", log=True)
    bars(axes[1][0], rows, results[FANIN], "cycles_per_sec", "3. Fan-in, 16 threads on one client (higher is better)",
         "cycles/s")
    bars(axes[1][1], rows, results[WAITING], "commands_per_acq",
         f"4. 16 waiters, {hold_seconds:g} s hold: commands per acquisition (lower is better)", "commands")
    figure.suptitle("redilock and its peers, one machine and one redis-server, medians "
                    "(blue: redilock, orange: peers, grey: raw baseline)", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---- the report -----------------------------------------------------------------------------

def contenders_table(rows):
    return table(["contender", "library and version", "waiting (library defaults)"],
                 [[row.label, row.library, row.waiting] for row in rows])


def write_report(rows, results, valgrind, context, markdown_path, chart_path):
    chart(rows, results, context["hold_seconds"], chart_path)
    text = f"""# redilock next to its peers

Measured by `make bench-peers` on {context['started']} ({context['minutes']:.0f} minutes), against one private
redis-server on loopback that every contender shares, contenders interleaved run by run. Each figure
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
{context['seconds']:g} s per run.

{cycles_table(rows, results[UNCONTENDED])}

The same on one core: redis-server and the worker pinned to one core, so that no round trip waits
for an idle core to wake up (see Machine) and the figure weighs the CPU work of a cycle, client and
server together. Node.js, Java and Go spread over their own threads on that one core too.

{cycles_table(rows, results[ONE_CORE])}

## 2. Contended hand-off

4 processes of the same contender on one name, each: lock (waiting), hold 2 ms, unlock, pause 2 ms,
for {context['contend_seconds']:g} s. Counted over the window in which all 4 run, each
process's first critical section (connection set-up, JIT) left out. Wait: from asking to holding.
Hand-off gap: the lock's idle time while it is wanted, from a release (stamped just before the
unlock call) to the next acquisition, counted when another process was waiting at that release.
All workers stamp with CLOCK_MONOTONIC.

{contended_table(rows, results[CONTENDED])}

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
per second and per waiter acquisition (16), and requests that clients sent (`MONITOR` lines that
are not Lua's).

{waiters_table(rows, results[WAITING])}

## 5. Memory

RSS (VmRSS) of one process holding one client, after 1,000 uncontended cycles and after
{context['memory_cycles']:,}{'' if context['memory_cycles'] >= 1_000_000 else ' (fewer than 1 M: at the C rate measured here, 1 M cycles would exceed the time budget of the run)'}.

{memory_table(rows, results[MEMORY])}

{valgrind_section(valgrind)}

## Targets

{targets_section(rows, results)}

## Reproduce

```sh
make bench-peers
```

It builds libredilock and its bench workers, runs `bench/peers/install` then `bench/peers/run`,
and rewrites this file and `results.png`. `PEERS_RUNS`, `PEERS_SECONDS`, `PEERS_CONTEND_SECONDS`,
`PEERS_HOLD_SECONDS` and `PEERS_MEMORY_CYCLES` tune it. The machine was shared with other work
when the load average above is high: figures then move between runs, ratios less so.
"""
    markdown_path.write_text(text)
