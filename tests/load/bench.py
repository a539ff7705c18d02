"""Threads against select(): the same workloads against phases 2, 3 and 4, side by side.

    python -m tests.load.bench                        # the table, for 10 to 2,000 clients
    python -m tests.load.bench --sizes 10,100         # fewer sizes, quicker
    python -m tests.load.bench --docs                 # also the JSON, table and charts
                                                      # of docs/performance.md

For every number of clients and every phase, the benchmark starts a fresh server,
connects and registers the clients (timed), notes the server's memory and threads once
all are connected, then runs two workloads with the load generator (tests/load/loadgen.py):

- throughput: 10 senders send flat out (each at most 64 messages in flight), enough
  messages that about --deliveries messages reach receivers in all;
- latency: 10 senders send 10 messages a second each for --rate-seconds seconds, and
  every delivery's latency is measured; the table shows the 99th percentile.

It prints one table and checks the course's targets (phase 4 against phase 3). Drawing
the charts needs matplotlib, which the course does not otherwise need:
``pip install matplotlib``.

Every server runs on 127.0.0.1 with --port 0 and is stopped at the end of its row.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

from . import loadgen
from .loadgen import LoadError, harness

DOCS_DIR = loadgen.REPO / "docs" / "assets" / "performance"
LABELS = {2: "phase 2 (threads, raw bytes)", 3: "phase 3 (threads)", 4: "phase 4 (select)"}
SHORT = {2: "2 · threads, raw bytes", 3: "3 · threads", 4: "4 · select"}  # in the table
COLOURS = {2: "#9e9e9e", 3: "#d84315", 4: "#3949ab"}


def measure_row(phase: int, clients: int, *, deliveries: int, senders: int, rate: float,
                rate_seconds: float, window: int, repeat: int, timeout: float) -> dict:
    """One phase at one number of clients: a fresh server, both workloads. The
    throughput workload runs repeat times on the same connections; the row keeps the
    median run (a shared 2-core machine is noisy)."""
    senders = min(senders, clients)
    server = loadgen.start_server(phase)
    row = {"phase": phase, "clients": clients}
    try:
        with loadgen.Swarm(server.host, server.port, loadgen.PROTOCOLS[phase],
                           pid=server.pid) as swarm:
            base = loadgen.process_stats(server.pid)
            row["connect_s"] = round(swarm.connect(clients, timeout=timeout), 3)
            swarm.sync(timeout=timeout)
            idle = loadgen.process_stats(server.pid)
            if base and idle:
                row.update(rss_base=base["rss"], rss_connected=idle["rss"],
                           rss_per_client=round((idle["rss"] - base["rss"]) / clients),
                           vms_connected=idle["vms"], threads=idle["threads"],
                           fds=idle["fds"])
            per_receiver = senders * (clients - 1) if clients > 1 else senders
            messages = max(1, math.ceil(deliveries / per_receiver))
            runs = [swarm.run(senders=senders, messages=messages, window=window,
                              timeout=timeout) for _ in range(repeat)]
            runs.sort(key=lambda r: r["deliveries_per_s"])
            row["throughput"] = runs[len(runs) // 2]
            row["throughput_runs"] = [r["deliveries_per_s"] for r in runs]
            row["throughput_problems"] = sum(len(loadgen.problems(r)) for r in runs)
            row["throughput_faults"] = sum(r[k] for r in runs
                                           for k in ("lost", "duplicated", "out_of_order"))
            row["latency"] = swarm.run(senders=senders,
                                       messages=max(1, round(rate * rate_seconds)),
                                       rate=rate, window=None, timeout=timeout)
    finally:
        server.stop()
    return row


def select_demo(clients: int, timeout: float) -> dict:
    """Connect clients to the select.select() demo server and report how far it got."""
    argv = [sys.executable, str(Path(__file__).with_name("select_demo.py")),
            "--host", "{host}", "--port", "{port}"]
    server = harness.ServerProcess(argv, cwd=loadgen.REPO, label="the select.select() demo")
    outcome = {"clients": clients}
    try:
        with loadgen.Swarm(server.host, server.port, "raw", pid=server.pid) as swarm:
            try:
                swarm.connect(clients, timeout=timeout)
                swarm.sync(timeout=10, retry=0.1)
                outcome["served"] = clients
            except LoadError as error:
                outcome["served"] = None
                outcome["load_error"] = str(error)
        try:
            server.proc.wait(5)  # it died, or is still serving
        except Exception:
            pass
        outcome["exit_status"] = server.proc.poll()
        errors = [line for line in server.stderr_tail(20) if "Error" in line]
        outcome["error"] = errors[-1].strip() if errors else None
    finally:
        server.stop()
    return outcome


def slow_reader(phase: int, *, clients: int = 10, senders: int = 2, messages: int = 3000,
                size: int = 1000, idle_timeout: float = 3.0) -> dict:
    """clients read everything and one more client never reads, while senders send
    messages lines of size bytes each (6 MB for the slow reader, by default)."""
    return loadgen.measure(phase, clients=clients, slow_readers=1, senders=senders,
                           messages=messages, size=size, timeout=60,
                           idle_timeout=idle_timeout)


def slow_reader_table(results: dict) -> str:
    out = ["| server | delivered to the others | their p99 latency | their max latency "
           "| the slow reader | then |",
           "| :--- | ---: | ---: | ---: | :--- | :--- |"]
    for phase, r in results.items():
        lat = r["latency_ms"]
        if r["stalled"]:
            then = (f"**frozen**: nothing more for anyone (the run gave up after "
                    f"{r['idle_timeout']:g} s of silence)")
        else:
            then = "everyone else carried on"
        slow = "disconnected by the server" if r["evicted"] else "still connected"
        out.append(f"| {LABELS[phase]} | {r['delivered']:,} of {r['expected']:,} "
                   f"| {fmt_ms(lat['p99'])} | {fmt_ms(lat['max'])} | {slow} | {then} |")
    return "\n".join(out)


def fmt_ms(value) -> str:
    return "–" if value is None else f"{value:,.1f} ms"


# --------------------------------------------------------------------------- targets


def find(rows: list, phase: int, clients: int):
    return next((r for r in rows if r["phase"] == phase and r["clients"] == clients), None)


def targets(rows: list) -> list:
    """The course's claims, checked against this run: (claim, value, holds or None)."""
    checks = []
    for n in (100, 1000):
        p3, p4 = find(rows, 3, n), find(rows, 4, n)
        if p3 and p4 and "throughput" in p3 and "throughput" in p4:
            ratio = (p4["throughput"]["deliveries_per_s"]
                     / max(1, p3["throughput"]["deliveries_per_s"]))
            checks.append((f"phase 4 delivers at least 3x phase 3's messages per second at "
                           f"{n:,} clients", f"{ratio:.1f}x", ratio >= 3))
    p4 = find(rows, 4, 2000)
    if p4 and "throughput" in p4:
        bad = p4["throughput_problems"] + len(loadgen.problems(p4["latency"]))
        checks.append(("phase 4 holds 2,000 clients with nothing lost, duplicated or "
                       "reordered", f"{bad} problems", bad == 0))
    biggest = max((r["clients"] for r in rows if r["clients"] >= 1000), default=None)
    if biggest:
        p3, p4 = find(rows, 3, biggest), find(rows, 4, biggest)
        if p3 and p4 and p3.get("rss_per_client") and p4.get("rss_per_client"):
            ratio = p3["rss_per_client"] / max(1, p4["rss_per_client"])
            checks.append((f"phase 4 needs at least 2x less memory per connected client "
                           f"than phase 3 (at {biggest:,} clients)", f"{ratio:.1f}x less",
                           ratio >= 2))
    return checks


# --------------------------------------------------------------------------- output


def kib(n) -> str:
    return "–" if n is None else f"{n / 1024:.1f} KiB"


def table(rows: list) -> str:
    """The results as a Markdown table (also readable as plain text)."""
    head = ["clients", "phase", "connect", "deliveries/s", "CPU per delivery",
            "p99 latency", "memory per client", "threads", "lost, dup., late"]
    out = ["| " + " | ".join(head) + " |",
           "| " + " | ".join(["---:", ":---"] + ["---:"] * (len(head) - 2)) + " |"]
    for r in rows:
        if "error" in r:
            cells = [f"{r['clients']:,}", SHORT[r["phase"]], "failed: " + r["error"][:60],
                     "", "", "", "", "", ""]
        else:
            t, lat = r["throughput"], r["latency"]
            bad = r["throughput_faults"] + sum(lat[k] for k in ("lost", "duplicated",
                                                               "out_of_order"))
            p99 = lat["latency_ms"]["p99"]
            cpu = cpu_per_delivery(t)
            cells = [f"{r['clients']:,}", SHORT[r["phase"]], f"{r['connect_s']:.2f} s",
                     f"{t['deliveries_per_s']:,}",
                     "–" if cpu is None else f"{cpu:.2f} µs",
                     "–" if p99 is None else f"{p99:.1f} ms",
                     kib(r.get("rss_per_client")), f"{r.get('threads', '–')}",
                     str(bad) + (" (stalled)" if t["stalled"] or lat["stalled"] else "")]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def cpu_per_delivery(run: dict):
    """Microseconds of server CPU (user and system) per message delivered: what one
    delivery costs the server, however fast the load generator could go."""
    server = run.get("server")
    if not server or not run["delivered"]:
        return None
    return server["cpu_s"] * 1e6 / run["delivered"]


def environment() -> dict:
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor())
    except OSError:
        cpu = platform.processor()
    return {"python": platform.python_version(), "system": f"{platform.system()} "
            f"{platform.release()}", "cpus": os.cpu_count(), "cpu": cpu,
            "date": datetime.date.today().isoformat()}


def markdown(rows: list, checks: list, env: dict, command: str) -> str:
    lines = [table(rows), "",
             f"Measured on {env['date']}: {env['cpus']} cores ({env['cpu']}), "
             f"{env['system']}, Python {env['python']}, with `{command}`.", ""]
    if checks:
        lines.append("Targets, checked in this run:")
        lines.append("")
        for claim, value, holds in checks:
            lines.append(f"- {'met' if holds else '**not met**'}: {claim}: **{value}**")
        lines.append("")
    return "\n".join(lines)


def demo_sentence(demo: dict) -> str:
    if demo.get("served"):
        return (f"The `select.select()` demo server served all {demo['clients']:,} clients "
                "(this system's select() has no 1,024 limit).")
    return (f"The `select.select()` demo server, given {demo['clients']:,} clients, died "
            f"(exit status {demo.get('exit_status')}) with `{demo.get('error')}`.")


def charts(rows: list, folder: Path) -> list:
    """Draw the three charts of docs/performance.md; return the files written."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("Drawing charts needs matplotlib, which the course itself does not "
                         "need: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    folder.mkdir(parents=True, exist_ok=True)
    good = [r for r in rows if "error" not in r]
    phases = sorted({r["phase"] for r in good})
    specs = [
        ("deliveries.png", "Messages delivered per second (higher is better)",
         "deliveries per second", lambda r: r["throughput"]["deliveries_per_s"], False),
        ("latency.png", "99th percentile latency at 10 messages/s per sender "
         "(lower is better)", "p99 latency (ms)",
         lambda r: r["latency"]["latency_ms"]["p99"], True),
        ("memory.png", "Server memory per connected client (lower is better)",
         "KiB per client (RSS)", lambda r: max(r.get("rss_per_client") or 0, 0) / 1024,
         False),
    ]
    written = []
    for name, title, ylabel, value, logy in specs:
        fig, ax = plt.subplots(figsize=(9, 5), dpi=100)
        for phase in phases:
            mine = sorted((r for r in good if r["phase"] == phase), key=lambda r: r["clients"])
            xs = [r["clients"] for r in mine]
            ys = [value(r) for r in mine]
            ax.plot(xs, ys, marker="o", linewidth=2.2 if phase == 4 else 1.6,
                    color=COLOURS[phase], label=LABELS[phase],
                    linestyle="--" if phase == 2 else "-")
        ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
            ys = [value(r) for r in good if value(r)]
            ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
                     if min(ys) / 2 <= t <= max(ys) * 2]
            ax.set_yticks(ticks)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        xs = sorted({r["clients"] for r in good})
        ax.set_xticks(xs)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        if not logy:
            ax.set_ylim(bottom=0)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlabel("connected clients")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = folder / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def write_outputs(args, rows, demo, slow, env, command) -> None:
    """The Markdown snippets and the charts docs/performance.md shows."""
    if args.markdown:
        md = Path(args.markdown)
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(markdown(rows, targets(rows), env, command))
        print(f"wrote {md}")
        # two more snippets for docs/performance.md, next to the table
        extra = {md.with_name(md.stem + "-select.md"): demo_sentence(demo) if demo else None,
                 md.with_name(md.stem + "-slow-reader.md"):
                     slow_reader_table(slow) if slow else None}
        for path, text in extra.items():
            if text:
                path.write_text(text + "\n")
                print(f"wrote {path}")
    if args.charts:
        for path in charts(rows, Path(args.charts)):
            print(f"wrote {path}")


# --------------------------------------------------------------------------- command line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,2000",
                        help="numbers of clients, comma-separated (default: %(default)s)")
    parser.add_argument("--phases", default="2,3,4", help="default: %(default)s")
    parser.add_argument("--deliveries", type=int, default=2_000_000,
                        help="messages to deliver in the throughput workload, roughly")
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--rate", type=float, default=10.0,
                        help="messages per second per sender in the latency workload")
    parser.add_argument("--rate-seconds", type=float, default=3.0)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the throughput workload; the median is kept")
    parser.add_argument("--timeout", type=float, default=300.0, help="per workload")
    parser.add_argument("--select-demo", type=int, default=1100, metavar="CLIENTS",
                        help="also run the select.select() demo with this many clients "
                             "(0: do not)")
    parser.add_argument("--no-slow-reader", dest="slow_reader", action="store_false",
                        help="skip the slow-reader comparison of phases 3 and 4")
    parser.add_argument("--json", metavar="PATH", help="write every number as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    parser.add_argument("--charts", metavar="DIR", help="draw the charts (PNG) into DIR "
                                                         "(needs: pip install matplotlib)")
    parser.add_argument("--replot", metavar="JSON",
                        help="measure nothing: draw the charts (--charts DIR) from the JSON "
                             "of an earlier run")
    parser.add_argument("--docs", action="store_true",
                        help="write the JSON, table and charts docs/performance.md shows, "
                             f"into {DOCS_DIR.relative_to(loadgen.REPO)}")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    phases = [int(p) for p in args.phases.split(",")]
    if any(p not in (2, 3, 4) for p in phases):
        parser.error("--phases: 2, 3 and/or 4 (phase 1 serves one client at a time)")
    if args.docs:
        args.json = args.json or str(DOCS_DIR / "results.json")
        args.markdown = args.markdown or str(DOCS_DIR / "results.md")
        args.charts = args.charts or str(DOCS_DIR)
    if args.charts and importlib.util.find_spec("matplotlib") is None:
        # say so now, not after minutes of measuring
        print("Drawing charts needs matplotlib, which the course itself does not need: "
              "pip install matplotlib", file=sys.stderr)
        return 2
    if args.replot:
        if not (args.charts or args.markdown):
            parser.error("--replot needs --charts DIR and/or --markdown PATH")
        data = json.loads(Path(args.replot).read_text())
        write_outputs(args, data["rows"], data.get("select_demo"),
                      {int(k): v for k, v in (data.get("slow_reader") or {}).items()},
                      data["environment"], data["command"])
        return 0
    harness.raise_fd_limit(20000)
    loadgen.exit_on_sigterm()

    rows = []
    started = time.perf_counter()
    for clients in sizes:
        for phase in phases:
            print(f"{clients:>5,} clients, {LABELS[phase]} ...", end=" ", flush=True)
            t0 = time.perf_counter()
            try:
                row = measure_row(phase, clients, deliveries=args.deliveries,
                                  senders=args.senders, rate=args.rate,
                                  rate_seconds=args.rate_seconds, window=args.window,
                                  repeat=args.repeat, timeout=args.timeout)
            except (LoadError, harness.CheckFailed) as error:
                row = {"phase": phase, "clients": clients, "error": str(error)}
                print(f"failed: {error}")
            else:
                t = row["throughput"]
                print(f"{t['deliveries_per_s']:>10,} deliveries/s, p99 "
                      f"{row['latency']['latency_ms']['p99']} ms at "
                      f"{args.rate:g}/s/sender ({time.perf_counter() - t0:.0f} s)", flush=True)
            rows.append(row)
    demo = None
    if args.select_demo:
        print(f"select.select() demo with {args.select_demo:,} clients ...", end=" ",
              flush=True)
        demo = select_demo(args.select_demo, timeout=60)
        print(demo_sentence(demo))

    slow = {}
    if args.slow_reader:
        for phase in (3, 4):
            if phase in phases:
                print(f"slow reader, {LABELS[phase]} ...", end=" ", flush=True)
                slow[phase] = slow_reader(phase)
                slow[phase]["idle_timeout"] = 3.0
                print("frozen" if slow[phase]["stalled"] else
                      f"evicted: {slow[phase]['evicted']}")

    checks = targets(rows)
    env = environment()
    command = "python -m tests.load.bench" + (f" --sizes {args.sizes}"
                                              if args.sizes != "10,100,1000,2000" else "")
    print()
    print(table(rows))
    print()
    for claim, value, holds in checks:
        print(f"{'PASS' if holds else 'MISS'}  {claim}: {value}")
    if slow:
        print()
        print("One client stops reading while 2 others send 6 MB:")
        print(slow_reader_table(slow))
    print(f"(all measured in {time.perf_counter() - started:.0f} s)")

    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            {"environment": env, "command": command, "settings": {
                k: getattr(args, k) for k in ("sizes", "phases", "deliveries", "senders",
                                              "rate", "rate_seconds", "window", "repeat")},
             "rows": rows, "select_demo": demo, "slow_reader": slow,
             "targets": [{"claim": c, "value": v, "holds": h} for c, v, h in checks]},
            indent=1) + "\n")
        print(f"wrote {args.json}")
    write_outputs(args, rows, demo, slow, env, command)
    failed = any("error" in r or r["throughput_problems"] or loadgen.problems(r["latency"])
                 for r in rows)
    return 1 if failed or not all(holds for _, _, holds in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
