"""Benchmark: the durable queue alone — append and drain rates — beside a raw sqlite3 baseline.

    PYTHONPATH=$PWD python benchmarks/queue_store.py [--events 1000000] [--batch 2000]

Baseline (same run, same machine, same disk): plain sqlite3, WAL, synchronous=FULL, one row
per event inserted with ``executemany`` in transactions of ``--batch`` rows, then read back and
deleted in the same chunks (secure_delete off, as in the queue). Both store the framed message
and the raw line of each event; the queue stores them one row per batch (the raw lines
compressed).

Then what the queue stores per realistic event, beside the framed message's size: the
synthetic Windows event of the other benchmarks, and the records of the ``.evtx`` files of a
folder (default: the test fixtures), rendered with OutputSeverity Verbose (all sent):
``queued`` is what the bound counts (wire + lengths + compressed raw lines), ``file`` the
queue file's size after a checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from azs_syslog.queue import NewBatch, Queue, QueueLimits, encode_raw, lengths_to_bytes

REPO_ROOT = Path(__file__).resolve().parent.parent

MESSAGE = (
    b"<84>Nov 26 10:00:00 azs-xrp01 CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
    b"Microsoft-Windows-Security-Auditing:4688|Process Creation|8|rt=1795687200123 "
    + b"MasChannel=Security MasComputer=azs-xrp01.azurestack.contoso.com "
    * 8
)
RAW = b'{"type": "windows", "provider_name": "Microsoft-Windows-Security-Auditing"' + b" " * 700


def framed() -> bytes:
    return b"%d %s" % (len(MESSAGE), MESSAGE)


def baseline(path: Path, events: int, batch: int) -> tuple[float, float]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA secure_delete=OFF")  # as the queue does (see azs_syslog/queue/)
    db.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, ms INTEGER, message BLOB, raw BLOB)")
    message = framed()
    rows = [(0, message, RAW)] * batch
    start = time.perf_counter()
    for _ in range(events // batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO q (ms, message, raw) VALUES (?, ?, ?)", rows)
        db.execute("COMMIT")
    append = time.perf_counter() - start
    start = time.perf_counter()
    while True:
        got = db.execute("SELECT id, message FROM q ORDER BY id LIMIT ?", (batch,)).fetchall()
        if not got:
            break
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM q WHERE id <= ?", (got[-1][0],))
        db.execute("COMMIT")
    drain = time.perf_counter() - start
    db.close()
    return events / append, events / drain


def queue_rates(path: Path, events: int, batch: int) -> tuple[float, float]:
    message = framed()
    new = NewBatch(
        count=batch,
        created_ms=0,
        render_key="bench",
        wire=message * batch,
        lengths=lengths_to_bytes([len(message)] * batch),
        raw=encode_raw([0] * batch, [RAW] * batch),
    )
    limits = QueueLimits(max_events=events * 2, max_bytes=1 << 40)
    with Queue(path, limits=limits) as producer:
        start = time.perf_counter()
        for _ in range(events // batch):
            producer.append_batch(new)
        append = time.perf_counter() - start
    with Queue(path, limits=limits, durable=False) as worker:
        start = time.perf_counter()
        after = 0
        while True:
            got = worker.next_batches(8, after_id=after)
            if not got:
                break
            ids = [b.id for b in got]
            worker.mark_sent(ids)
            worker.confirm(ids, sent=sum(b.messages for b in got))
            after = ids[-1]
        drain = time.perf_counter() - start
    return events / append, events / drain


def synthetic_lines(events: int) -> list[str]:
    from tests.test_send_event import windows_event

    return [windows_event(i) for i in range(events)]


def evtx_lines(folder: Path) -> list[str]:
    """Every readable and valid record of the ``.evtx`` files in ``folder``, as a JSON line
    (as ``send-event`` writes it back)."""
    import json

    from azs_syslog.encode.render import Renderer, RenderSettings
    from azs_syslog.errors import EventError
    from azs_syslog.inputs.detect import open_input

    renderer = Renderer(RenderSettings())
    lines: list[str] = []
    for path in sorted(folder.glob("*.evtx")):
        with path.open("rb") as stream:
            for _, record in open_input(stream, "evtx", lambda problem: None).records:
                line = (
                    record
                    if isinstance(record, str)
                    else json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                )
                try:
                    renderer.render_line(line, 0)
                except EventError:
                    continue  # rejected by send-event too
                lines.append(str(line))
    return lines


def stored_bytes(path: Path, lines: list[str]) -> tuple[float, float, float]:
    """(framed, queued, file) bytes per event for ``lines`` enqueued as ``send-event`` does."""
    from dataclasses import replace

    from azs_syslog.encode.render import Renderer, RenderSettings
    from azs_syslog.queue.ingest import enqueue_records

    settings = replace(RenderSettings(), output_severity="Verbose")
    framed = sum(len(Renderer(settings).render_line(line, 0) or b"") for line in lines)
    with Queue(path, limits=QueueLimits(max_bytes=1 << 40)) as queue:
        enqueue_records(enumerate(lines, 1), queue, Renderer(settings), settings.key)
        queued = queue.depth().bytes
        queue._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    n = len(lines)
    return framed / n, queued / n, path.stat().st_size / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--evtx-folder", type=Path, default=REPO_ROOT / "tests/fixtures/evtx")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        base_append, base_drain = baseline(Path(tmp) / "baseline.sqlite3", args.events, args.batch)
        q_append, q_drain = queue_rates(Path(tmp) / "queue.sqlite3", args.events, args.batch)
    print(f"events: {args.events:,}, {len(framed())} B framed + {len(RAW)} B raw each")
    print(f"{'':24}{'queue':>14}{'sqlite3 baseline':>20}{'ratio':>8}")
    for name, ours, base in (
        ("append (events/s)", q_append, base_append),
        ("drain (events/s)", q_drain, base_drain),
    ):
        print(f"{name:24}{ours:>14,.0f}{base:>20,.0f}{ours / base:>8.1f}")
    real = evtx_lines(args.evtx_folder)
    print()
    print(f"{'bytes per event':24}{'framed':>10}{'queued':>10}{'file':>10}{'queued/framed':>15}")
    for name, lines in (
        ("synthetic Windows event", synthetic_lines(min(args.events, 100_000))),
        (f"{len(real):,} .evtx records", real),
    ):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
            framed_b, queued_b, file_b = stored_bytes(Path(tmp) / "bytes.sqlite3", lines)
        print(
            f"{name:24}{framed_b:>10,.0f}{queued_b:>10,.0f}{file_b:>10,.0f}"
            f"{queued_b / framed_b:>15.2f}"
        )


if __name__ == "__main__":
    main()
