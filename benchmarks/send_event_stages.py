"""Benchmark: where ``send-event FILE``'s CPU time goes, per event, by stage. One core.

Writes N synthetic events (``benchmarks/encode.py``'s ``make_lines``, ~900 bytes of JSON each)
to a file, then measures in this process, in CPU time (``time.process_time``: every thread of
this process, so the flusher thread's share counts; on a shared machine it does not depend on
what else runs), each of:

* read: the input split into records (``inputs.detect.open_input`` on the file, as
  ``send-event`` opens it), nothing else;
* render: ``Renderer.render_line`` on each record, with a real acceptance time;
* raw: the raw lines of each batch encoded and compressed (``queue.encode_raw``);
* append: the batches committed to a fresh queue (``Queue.append_batch``, durable);
* send-event: the whole in-process path (``queue.ingest.enqueue_chunks`` on the opened file,
  as ``send-event`` calls it, to a fresh queue, no forwarder),

and prints microseconds per event for each, with "the rest of the loop" (batching, the lock
shared with the flusher thread, bookkeeping): send-event minus the four stages. With
``--command`` it also runs ``azs-syslog send-event FILE`` as a child process (its user + system
CPU time, start-up included).

    PYTHONPATH=. python benchmarks/send_event_stages.py [--events N] [--repeat R] [--command]

Each figure is the best of R runs (the cases take turns, so each sees the same moments of a
shared machine), the median beside it. Rendered with OutputSeverity Verbose (the
synthetic events are Information events: the default would filter every one out). Not a
test: it measures, it does not assert.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.inputs.detect import open_input
from azs_syslog.queue import NewBatch, Queue, encode_raw, lengths_to_bytes
from azs_syslog.queue.ingest import DEFAULT_BATCH_EVENTS, enqueue_chunks
from benchmarks.encode import make_lines

# Verbose: every event is sent (``make_lines`` writes Information events, which the default
# OutputSeverity filters out: their batches would hold no messages).
SETTINGS = replace(RenderSettings(), output_severity="Verbose")


def read_records(path: Path) -> int:
    """The records of the file, in chunks, as ``send-event`` reads them."""
    with path.open("rb") as stream:
        return sum(len(numbers) for numbers, _ in open_input(stream, "auto", print).chunks)


def rendered(lines: list[str]) -> list[tuple[int, bytes | None]]:
    renderer = Renderer(SETTINGS)
    out = []
    for line in lines:
        accepted = time.time_ns() // 1_000_000
        out.append((accepted, renderer.render_line(line, accepted)))
    return out


def batches(lines: list[str], framed: list[tuple[int, bytes | None]]) -> list[NewBatch]:
    out = []
    for start in range(0, len(lines), DEFAULT_BATCH_EVENTS):
        part = framed[start : start + DEFAULT_BATCH_EVENTS]
        raws = [line.encode() for line in lines[start : start + DEFAULT_BATCH_EVENTS]]
        wire = [message for _, message in part if message is not None]
        out.append(
            NewBatch(
                count=len(part),
                created_ms=part[0][0],
                render_key=SETTINGS.key,
                wire=b"".join(wire),
                lengths=lengths_to_bytes(map(len, wire)),
                raw=encode_raw([accepted for accepted, _ in part], raws),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--command", action="store_true", help="also the CLI, as a child")
    args = parser.parse_args()
    count = args.events
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "events.jsonl"
        lines = make_lines(count)
        path.write_text("".join(line + "\n" for line in lines))
        framed = rendered(lines)
        ready = batches(lines, framed)
        runs = iter(range(10_000))

        def fresh_home() -> None:
            home = Path(work) / f"home{next(runs)}"
            home.mkdir()
            os.environ["AZS_SYSLOG_HOME"] = str(home)

        def read() -> None:
            read_records(path)

        def render() -> None:
            rendered(lines)

        def raw() -> None:
            for start in range(0, count, DEFAULT_BATCH_EVENTS):
                raws = [line.encode() for line in lines[start : start + DEFAULT_BATCH_EVENTS]]
                encode_raw([accepted for accepted, _ in framed[start : start + len(raws)]], raws)

        def append() -> None:
            with Queue() as queue:
                for batch in ready:
                    queue.append_batch(batch)

        def send_event() -> None:
            renderer = Renderer(SETTINGS)
            with path.open("rb") as stream, Queue() as queue:
                opened = open_input(stream, "auto", lambda problem: None)
                result = enqueue_chunks(opened.chunks, queue, renderer, SETTINGS.key)
            assert result.accepted == count, result

        def command() -> None:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "azs_syslog",
                    "set-syslog-client",
                    "--output-severity",
                    "Verbose",
                ],
                check=True,
                capture_output=True,
            )
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(
                [sys.executable, "-m", "azs_syslog", "send-event", str(path)],
                check=True,
                capture_output=True,
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            command.cpu = (after.ru_utime + after.ru_stime) - (  # type: ignore[attr-defined]
                before.ru_utime + before.ru_stime
            )

        cases: list[tuple[str, Callable[[], None]]] = [
            ("read", read),
            ("render", render),
            ("raw (encode + zlib)", raw),
            ("append (SQLite)", append),
            ("send-event in-process", send_event),
        ]
        if args.command:
            cases.append(("send-event command", command))
        cpus: dict[str, list[float]] = {label: [] for label, _ in cases}
        for _ in range(args.repeat):
            for label, work_ in cases:
                fresh_home()
                started = time.process_time()
                work_()
                spent = time.process_time() - started
                if work_ is command:
                    spent = command.cpu  # type: ignore[attr-defined]
                cpus[label].append(spent / count * 1e6)
    print(f"{count:,} events, CPU microseconds per event, best (median) of {args.repeat}:")
    for label, spent in cpus.items():
        print(f"  {label:24} {min(spent):6.2f}  ({statistics.median(spent):.2f})")
    stages = ("read", "render", "raw (encode + zlib)", "append (SQLite)")
    rest = min(cpus["send-event in-process"]) - sum(min(cpus[s]) for s in stages)
    print(f"  {'rest of the loop':24} {rest:6.2f}  (send-event minus the four stages)")
    best = min(cpus["send-event in-process"])
    print(f"send-event in-process: {1e6 / best:,.0f} events/s of one core's CPU")


if __name__ == "__main__":
    main()
