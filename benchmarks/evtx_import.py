"""Benchmark: importing ``.evtx`` files, beside the ``evtx`` parser's own rate, one run.

For the readable records of every ``.evtx`` file in a folder (default: the test fixtures,
real logs), prints records/s of:

* the ``evtx`` parser alone (iterating its records as XML: the peer, what the import started
  from before it read chunks itself);
* read + map (``inputs.detect.open_input``: each record as our Windows event, JSON text; each
  intact chunk read by our C reader of the records' binary XML, the others by the parser);
* read + map + render (``Renderer.render_line`` on each, Verbose: nothing filtered);
* ``format-event`` (read, map, render, print; in-process, stdout captured);
* ``send-event`` (read, map, render, queue durably; in-process, a throwaway queue);

then the cost of each stage in microseconds per record (CPU time, the differences between
the lines above).

Then the same import of one large file, as a server's Security log is (the fixtures are 64 KiB
to 2 MiB): every readable chunk of the fixtures, repeated ``--copies`` times behind the first
file's header (real records, each chunk a real chunk). On it: the parser alone, our read + map
alone, ``send-event`` with one process, and ``send-event --jobs 2`` (each process reads,
renders and commits its own chunks; its CPU time is counted too). Beside them, what two
processes get of this machine: a pure-Python loop run in two processes at once against one
(2.0: two real cores).

    PYTHONPATH=. python benchmarks/evtx_import.py [--folder DIR] [--repeat R] [--copies C]

Each figure is the best of R runs (median beside it), in wall-clock time and in CPU time of
this process (all its threads: on a machine shared with other work, the CPU figure is the one
that does not depend on what else runs). Not a test: it measures, it does not assert. The
parser uses every core by default; the rest runs on one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from evtx import PyEvtxParser

from azs_syslog.cli import cli
from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.errors import EventError
from azs_syslog.inputs.detect import open_input

REPO_ROOT = Path(__file__).resolve().parent.parent


def parser_only(files: list[Path]) -> int:
    count = 0
    for path in files:
        records = PyEvtxParser(str(path)).records()
        while True:
            try:
                next(records)
            except StopIteration:
                break
            except RuntimeError:
                continue
            count += 1
    return count


def parse_map_render(files: list[Path]) -> int:
    renderer = Renderer(RenderSettings(output_severity="Verbose"))
    count = 0
    for path in files:
        with path.open("rb") as stream:
            for _, record in open_input(stream, "evtx", lambda problem: None).records:
                try:
                    if isinstance(record, dict):
                        renderer.render_object(record, 0)
                    else:
                        renderer.render_line(record, 0)
                except EventError:  # rejected (as format-event and send-event do)
                    pass
                count += 1
    return count


def parse_and_map(files: list[Path]) -> int:
    count = 0
    for path in files:
        with path.open("rb") as stream:
            for _ in open_input(stream, "evtx", lambda problem: None).records:
                count += 1
    return count


def command(name: str, files: list[Path], *options: str) -> Callable[[], int]:
    def run() -> int:
        runner = CliRunner()
        for path in files:
            args = [name, *options, str(path)]
            if name == "format-event":
                args[1:1] = ["--output-severity", "Verbose"]
            result = runner.invoke(cli, args, catch_exceptions=False)
            if result.exit_code not in (0, 3):
                raise SystemExit(f"{name} {path}: exit {result.exit_code}: {result.stderr}")
        return 0

    return run


def measure(
    work: Callable[[], int], repeat: int, *, fresh_queue: bool = False
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each run (with those of the child processes it waited
    for); ``fresh_queue``: each run with an empty queue of its own (else one queue for all,
    the ``AZS_SYSLOG_HOME`` set by the caller)."""
    walls, cpus = [], []
    for _ in range(repeat):
        with contextlib.ExitStack() as stack:
            if fresh_queue:
                os.environ["AZS_SYSLOG_HOME"] = stack.enter_context(tempfile.TemporaryDirectory())
            children = os.times()
            started, cpu = time.perf_counter(), time.process_time()
            work()
            walls.append(time.perf_counter() - started)
            cpu = time.process_time() - cpu
            after = os.times()
        cpus.append(cpu + after.children_user + after.children_system - sum(children[2:4]))
    return walls, cpus


def large_file(files: list[Path], copies: int, target: Path) -> int:
    """Write one .evtx file of every readable chunk of ``files``, ``copies`` times, behind
    the first file's header; returns its number of readable records."""
    chunks = []
    for path in files:
        data = path.read_bytes()
        for offset in range(4096, len(data) - 65535, 65536):
            chunk = data[offset : offset + 65536]
            if chunk[:8] == b"ElfChnk\0":
                chunks.append(chunk)
    target.write_bytes(files[0].read_bytes()[:4096] + b"".join(chunks) * copies)
    return parser_only([target])


def _spin() -> None:
    total = 0
    for number in range(3_000_000):
        total += number


def parallel_capacity() -> float:
    """How many times one process's work two processes do at once here (2.0: two cores)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    _spin()
    one = time.perf_counter() - started
    started = time.perf_counter()
    children = [context.Process(target=_spin) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    return 2 * one / (time.perf_counter() - started)


def report_large(files: list[Path], copies: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.evtx"
        records = large_file(files, copies, path)
        size = path.stat().st_size / 1e6
        print(f"\none large file: the fixtures' chunks x{copies}, {size:.0f} MB, {records} records")
        print(f"{'':24} {'wall clock':>16} {'CPU time':>16}   (median wall, CPU)")
        cases: list[tuple[str, Callable[[], int]]] = [
            ("evtx parser alone", lambda: parser_only([path])),
            ("read + map", lambda: parse_and_map([path])),
            ("send-event", command("send-event", [path])),
            ("send-event --jobs 2", command("send-event", [path], "--jobs", "2")),
        ]
        capacities = []
        for label, work in cases:
            capacities.append(parallel_capacity())
            walls, cpus = measure(work, repeat, fresh_queue=True)
            print(
                f"{label:24} {records / min(walls):>10,.0f} rec/s"
                f" {records / min(cpus):>10,.0f} rec/s"
                f"   ({records / statistics.median(walls):,.0f}, "
                f"{records / statistics.median(cpus):,.0f})"
            )
        capacities.append(parallel_capacity())
        print(
            "two processes at once do "
            + ", ".join(f"{capacity:.2f}" for capacity in capacities)
            + " times one's work here (measured before, between and after the lines above)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--folder", type=Path, default=REPO_ROOT / "tests" / "fixtures" / "evtx")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    files = sorted(args.folder.glob("*.evtx"))
    if not files:
        raise SystemExit(f"no .evtx files in {args.folder}")
    records = parser_only(files)
    print(f"{len(files)} files, {records} readable records, {os.cpu_count()} cores")
    print(f"{'':24} {'wall clock':>16} {'CPU time':>16}   (median wall, CPU)")
    cpu_us: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as home:
        os.environ["AZS_SYSLOG_HOME"] = home
        cases: list[tuple[str, Callable[[], int]]] = [
            ("evtx parser alone", lambda: parser_only(files)),
            ("read + map", lambda: parse_and_map(files)),
            ("read + map + render", lambda: parse_map_render(files)),
            ("format-event", command("format-event", files)),
            ("send-event (queued)", command("send-event", files)),
        ]
        for label, work in cases:
            walls, cpus = measure(work, args.repeat)
            cpu_us[label] = min(cpus) / records * 1e6
            print(
                f"{label:24} {records / min(walls):>10,.0f} rec/s"
                f" {records / min(cpus):>10,.0f} rec/s"
                f"   ({records / statistics.median(walls):,.0f}, "
                f"{records / statistics.median(cpus):,.0f})"
            )
        # Each command starts once per file (configuration, queue, imports already done):
        # measured on the file with the fewest records, so the per-record cost can be told
        # from it.
        smallest = min(files, key=lambda path: parser_only([path]))
        small_records = parser_only([smallest])
        starts: dict[str, float] = {}
        for name in ("format-event", "send-event"):
            _, cpus = measure(command(name, [smallest]), args.repeat)
            starts[name] = min(cpus)
    parse = cpu_us["evtx parser alone"]
    mapped = cpu_us["read + map"]
    rendered = cpu_us["read + map + render"]
    print("per record (CPU time, microseconds):")
    print(
        f"  read + map {mapped:.1f} (the parser alone: {parse:.1f})   "
        f"render {rendered - mapped:.1f}"
    )
    print(
        f"  format-event beyond render {cpu_us['format-event'] - rendered:.1f}   "
        f"send-event beyond render (queue) {cpu_us['send-event (queued)'] - rendered:.1f}"
    )
    print(
        f"each command's start, once per file ({smallest.name}, {small_records} records): "
        f"format-event {starts['format-event'] * 1000:.1f} ms, "
        f"send-event {starts['send-event'] * 1000:.1f} ms CPU; without it, per record:"
    )
    for name, label in (("format-event", "format-event"), ("send-event", "send-event (queued)")):
        per_record = cpu_us[label] - len(files) * starts[name] / records * 1e6
        print(f"  {name:14} {per_record:.1f} us  ({1e6 / per_record:,.0f} records/s CPU)")
    report_large(files, args.copies, args.repeat)


if __name__ == "__main__":
    from benchmarks.installed import compile_bytecode

    compile_bytecode()  # as an install has it (benchmarks/installed.py)
    main()
