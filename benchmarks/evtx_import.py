"""Benchmark: importing ``.evtx`` files, beside the ``evtx`` parser's own rate, one run.

For the readable records of every ``.evtx`` file in a folder (default: the test fixtures,
real logs), prints records/s of:

* the ``evtx`` parser alone (iterating its records as XML: what the import starts from);
* parse + map (``inputs.detect.open_input``: each record as our Windows event);
* ``format-event`` (parse, map, render, print; in-process, stdout captured);
* ``send-event`` (parse, map, render, queue durably; in-process, a throwaway queue).

    PYTHONPATH=. python benchmarks/evtx_import.py [--folder DIR] [--repeat R]

Each figure is the best of R runs (median beside it). Not a test: it measures, it does not
assert. The parser uses every core by default; the rest runs on one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from evtx import PyEvtxParser

from azs_syslog.cli import cli
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


def parse_and_map(files: list[Path]) -> int:
    count = 0
    for path in files:
        with path.open("rb") as stream:
            for _ in open_input(stream, "evtx", lambda problem: None).records:
                count += 1
    return count


def command(name: str, files: list[Path]) -> Callable[[], int]:
    def run() -> int:
        runner = CliRunner()
        for path in files:
            args = [name, str(path)]
            if name == "format-event":
                args[1:1] = ["--output-severity", "Verbose"]
            result = runner.invoke(cli, args, catch_exceptions=False)
            if result.exit_code not in (0, 3):
                raise SystemExit(f"{name} {path}: exit {result.exit_code}: {result.stderr}")
        return 0

    return run


def measure(work: Callable[[], int], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--folder", type=Path, default=REPO_ROOT / "tests" / "fixtures" / "evtx")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files = sorted(args.folder.glob("*.evtx"))
    if not files:
        raise SystemExit(f"no .evtx files in {args.folder}")
    records = parser_only(files)
    print(f"{len(files)} files, {records} readable records, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as home:
        os.environ["AZS_SYSLOG_HOME"] = home
        cases: list[tuple[str, Callable[[], int]]] = [
            ("evtx parser alone", lambda: parser_only(files)),
            ("parse + map to events", lambda: parse_and_map(files)),
            ("format-event", command("format-event", files)),
            ("send-event (queued)", command("send-event", files)),
        ]
        for label, work in cases:
            times = measure(work, args.repeat)
            best, median = min(times), statistics.median(times)
            print(
                f"{label:24} {records / best:>10,.0f} records/s"
                f"   (median {records / median:,.0f}; best {best * 1000:.0f} ms)"
            )


if __name__ == "__main__":
    main()
