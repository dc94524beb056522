"""Benchmark: one JSON line -> framed syslog bytes (``Renderer.render_line``), one core.

Prints events/s on real records and on a synthetic Windows event (~20 extensions, ~900 bytes
of JSON), each beside ``json.loads`` alone on the same lines (the baseline) and
``orjson.loads`` alone (the parser the renderer uses), compiled and pure-Python encoders, all
measured in the same run (targets: >= 150,000 events/s, and >= 0.6 x json.loads on the real
records). Compiled, also the lines 256 at a time through ``Renderer.render_lines``: how
``send-event`` renders a chunk of its input (one compiled call a run of lines). Not a test.

The real records are every readable record of tests/fixtures/evtx/*.evtx, mapped as
``send-event`` maps them and written as one JSON line each (our JSON, with ``event_data_names``
as the mapping fills it); a second set holds the same records with the ``event_data`` values
that are decimal numbers or ``true``/``false`` as JSON integers and booleans, as a PowerShell
export or another converter writes them (the same bytes on the wire). Before timing, it counts
which path each real record takes.

    PYTHONPATH=. python benchmarks/encode.py [--events N] [--repeat R] [--format rfc3164|rfc5424]

Each figure is the best of R runs, with their median beside it.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from azs_syslog.encode.plan import RenderPlan
from azs_syslog.encode.render import COMPILED, Renderer, RenderSettings
from azs_syslog.events.record import FILE_CHUNK

EVENT_DATA = [
    "S-1-5-18",
    "AZS-NODE01$",
    "AZURESTACK",
    "0x3e7",
    "0x1a2c",
    "C:\\Windows\\System32\\svchost.exe",
    "%%1936",
]
BASE_EVENT: dict[str, object] = {
    "type": "windows",
    "host": "azs-node01.azurestack.local",
    "provider_name": "Microsoft-Windows-Security-Auditing",
    "event_id": 4688,
    "level": 4,
    "task_name": "Process Creation",
    "channel": "Security",
    "computer": "azs-node01.azurestack.local",
    "correlation_activity_id": "C8F40D7C-3764-423B-A4FA-C994442238AF",
    "event_data": EVENT_DATA,
    "event_description": "A new process has been created. Creator Subject: Security ID: SYSTEM",
    "event_record_id": 26637,
    "execution_process_id": 4,
    "execution_thread_id": 25480,
    "keywords": "0x8020000000000000",
    "keyword_name": "Audit Success",
    "opcode": 0,
    "opcode_name": "Info",
    "provider_guid": "54849625-5478-4994-A5BA-3E3B0328C30D",
    "security_user_id": "S-1-5-18",
    "task": 13312,
    "task_category": "Process Creation",
    "version": 2,
}


def make_lines(count: int, *, with_path: bool = True) -> list[str]:
    """Distinct lines as a producer sends them: the time moves on by ~1 ms per event and the
    record id counts up, so no cache sees the same event twice. ``with_path``: the event data
    holds a Windows path, so its backslashes must be escaped (the slower, common case)."""
    lines = []
    start = 1_795_687_200_000  # 2026-11-26T10:00:00Z
    base = dict(BASE_EVENT)
    if not with_path:
        base["event_data"] = [value.replace("\\", "/") for value in EVENT_DATA]
    for index in range(count):
        event = dict(base)
        ms = start + index
        seconds, millis = divmod(ms, 1000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        event["time"] = f"{stamp}.{millis:03d}Z"
        event["event_record_id"] = 26637 + index
        lines.append(json.dumps(event))
    return lines


def rates(funcs: list[object], lines: list[str], repeat: int) -> list[tuple[float, float]]:
    """The best and the median rate (lines/s) of ``repeat`` runs of each function over
    ``lines``; the functions take turns, so that each sees the same moments of a shared
    machine."""
    times: list[list[float]] = [[] for _ in funcs]
    for _ in range(repeat):
        for func, spent in zip(funcs, times, strict=True):
            started = time.perf_counter()
            func(lines)  # type: ignore[operator]
            spent.append(time.perf_counter() - started)
    return [(len(lines) / min(t), len(lines) / statistics.median(t)) for t in times]


FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "evtx"
_NUMBER = re.compile(r"(?:0|[1-9][0-9]{0,17})\Z")


def real_lines() -> tuple[list[str], list[str], int]:
    """Every readable record of the fixtures as our JSON lines, the same records with typed
    event data, and how many records the renderer refuses (left out: format-event rejects
    them too)."""
    from azs_syslog.errors import EventError
    from azs_syslog.inputs.detect import open_input

    check = Renderer(RenderSettings(output_severity="Verbose"), default_host="bench-host")
    lines: list[str] = []
    typed: list[str] = []
    refused = 0
    for path in sorted(FIXTURES.glob("*.evtx")):
        with path.open("rb") as stream:
            for _, record in open_input(stream, "evtx", lambda problem: None).records:
                if isinstance(record, str):  # the EVTX reader hands on our JSON as text
                    record = json.loads(record)
                assert isinstance(record, dict)
                line = json.dumps(record, ensure_ascii=False)
                try:
                    check.render_line(line, 0)
                except EventError:
                    refused += 1
                    continue
                lines.append(line)
                data = record.get("event_data")
                if type(data) is list:
                    record = {**record, "event_data": [_typed(item) for item in data]}
                typed.append(json.dumps(record, ensure_ascii=False))
    return lines, typed, refused


def _typed(item: object) -> object:
    if isinstance(item, str):
        if _NUMBER.match(item):
            return int(item)
        if item in ("true", "false"):
            return item == "true"
    return item


def path_counts(settings: RenderSettings, lines: list[str], *, compiled: bool) -> str:
    """Which path each line takes: the fused path straight away, the fused path after a
    change of shape (a plan lookup), the reference path (the first line of a shape, which
    makes its plan, or any doubt)."""
    renderer = Renderer(settings, default_host="bench-host", compiled=compiled)
    counts = {"lookups": 0, "reference": 0}
    find_plan, reference = renderer._find_plan, renderer._reference

    def counted_find(line: str, obj: dict[str, Any]) -> RenderPlan | None:
        counts["lookups"] += 1
        return find_plan(line, obj)

    def counted_reference(line: str, accepted_ms: int) -> bytes | None:
        counts["reference"] += 1
        return reference(line, accepted_ms)

    renderer._find_plan = counted_find  # type: ignore[method-assign]
    renderer._reference = counted_reference  # type: ignore[method-assign]
    for line in lines:
        renderer.render_line(line, 0)
    fused = len(lines) - counts["reference"]
    return (
        f"{fused:,} fused ({fused / len(lines):.1%}), of which {counts['lookups']:,} after a "
        f"plan lookup (a change of shape); {counts['reference']:,} reference "
        f"({counts['reference'] / len(lines):.1%}); {len(renderer._plans)} shapes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--format", default="rfc3164", choices=["rfc3164", "rfc5424"])
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one run")
    args = parser.parse_args()

    settings = RenderSettings(message_format=args.format, output_severity="Verbose")
    accepted = 1_795_687_200_000
    print(
        f"one core, best of {args.repeat} runs (median beside it); {args.format}, "
        "octet-counting; targets >= 150,000 events/s and >= 0.6 x json.loads on real records"
    )
    real, typed, refused = real_lines()
    # The real records again and again up to --events lines, so that each run lasts as long as
    # the synthetic one (the caches see each record once per pass, as they would a new one).
    passes = max(1, args.events // len(real))
    sets = [
        (
            f"real records: {len(real):,} from tests/fixtures/evtx ({refused} refused), x{passes}",
            real * passes,
        ),
        ("the same real records, event data typed (integers, booleans)", typed * passes),
        ("synthetic, with a path to escape", make_lines(args.events, with_path=True)),
        ("synthetic, nothing to escape", make_lines(args.events, with_path=False)),
    ]
    for title, lines in sets[:2]:
        for compiled in [True, False] if COMPILED else [False]:
            name = "compiled" if compiled else "pure-Python"
            counts = path_counts(settings, lines[: len(real)], compiled=compiled)
            print(f"  paths, {title.split(':')[0]}, {name}: {counts}")
    for title, lines in sets:
        # The compiled encoder when it is built, and the pure-Python one (what an install
        # without a C compiler runs), same run.
        renderers = [Renderer(settings, default_host="bench-host", compiled=False)]
        if COMPILED:
            renderers.insert(0, Renderer(settings, default_host="bench-host", compiled=True))

        def only_json(batch: list[str]) -> None:
            loads = json.loads
            for line in batch:
                loads(line)

        def only_orjson(batch: list[str]) -> None:
            loads = orjson.loads
            for line in batch:
                loads(line)

        def renders(renderer: Renderer) -> Callable[[list[str]], None]:
            def run(batch: list[str]) -> None:
                render_line = renderer.render_line
                for line in batch:
                    render_line(line, accepted)

            return run

        def renders_chunks(renderer: Renderer) -> Callable[[list[str]], None]:
            """The lines 256 at a time through render_lines, as the queue renders them."""

            def run(batch: list[str]) -> None:
                render_lines = renderer.render_lines
                for start in range(0, len(batch), FILE_CHUNK):
                    render_lines(batch[start : start + FILE_CHUNK], accepted, [])

            return run

        samples = {renderer.render_line(lines[0], accepted) for renderer in renderers}
        assert len(samples) == 1 and None not in samples  # the same bytes either way
        sample = samples.pop()
        assert sample is not None
        if args.profile:
            import cProfile
            import pstats

            render = renders(renderers[0])
            cProfile.runctx("render(lines)", globals(), locals(), "/tmp/encode.prof")
            pstats.Stats("/tmp/encode.prof").sort_stats("tottime").print_stats(12)

        chunked = [renders_chunks(renderers[0])] if COMPILED else []
        figures = rates(
            [only_json, only_orjson, *(renders(r) for r in renderers), *chunked],
            lines,
            args.repeat,
        )
        (base_best, base_median), (parse_best, parse_median), *rendered = figures
        chunk_figures = rendered[len(renderers) :]
        rendered = rendered[: len(renderers)]
        size = sum(map(len, lines)) // len(lines)
        print(f"\n{title}: {len(lines):,} lines, {size} characters of JSON on average")
        for renderer, (best, median) in zip(renderers, rendered, strict=True):
            name = "compiled encoder" if renderer.compiled else "pure-Python encoder"
            label = f"json line -> framed syslog, {name}"
            print(
                f"  {label:48s}{best:>9,.0f} events/s (median {median:,.0f}) "
                f"| baseline json.loads alone: {base_best:,.0f} lines/s "
                f"(median {base_median:,.0f}) | ratio {best / base_best:.2f}"
            )
        for best, median in chunk_figures:
            label = "the same, 256 lines a call (send-event's path)"
            print(
                f"  {label:48s}{best:>9,.0f} events/s (median {median:,.0f}) "
                f"| ratio {best / base_best:.2f}"
            )
        label = "orjson.loads alone (the parser the encoders use)"
        print(f"  {label:48s}{parse_best:>9,.0f} lines/s  (median {parse_median:,.0f})")


if __name__ == "__main__":
    main()
