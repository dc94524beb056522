"""Benchmark: one JSON line -> framed syslog bytes (``Renderer.render_line``), one core.

Prints events/s for a realistic Windows event (~20 extensions, ~800 bytes of JSON) beside
``json.loads`` alone on the same lines (the baseline), and ``orjson.loads`` alone (the parser
the renderer uses), measured in the same run (SPEC section 10; target
>= 150,000 events/s). Not a test.

    PYTHONPATH=. python benchmarks/encode.py [--events N] [--repeat R] [--format rfc3164|rfc5424]

Each figure is the best of R runs, with their median beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import orjson

from azs_syslog.render import COMPILED, Renderer, RenderSettings

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
        f"one core, {args.events:,} distinct lines per run, best of {args.repeat} runs "
        f"(median beside it); {args.format}, octet-counting; target >= 150,000 events/s"
    )
    for with_path in (True, False):
        lines = make_lines(args.events, with_path=with_path)
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

        samples = {renderer.render_line(lines[0], accepted) for renderer in renderers}
        assert len(samples) == 1 and None not in samples  # the same bytes either way
        sample = samples.pop()
        assert sample is not None
        if args.profile and with_path:
            import cProfile
            import pstats

            render = renders(renderers[0])
            cProfile.runctx("render(lines)", globals(), locals(), "/tmp/encode.prof")
            pstats.Stats("/tmp/encode.prof").sort_stats("tottime").print_stats(12)

        figures = rates(
            [only_json, only_orjson, *(renders(r) for r in renderers)], lines, args.repeat
        )
        (base_best, base_median), (parse_best, parse_median), *rendered = figures
        kind = "with a path to escape" if with_path else "nothing to escape"
        print(f"\n{kind}: {len(lines[0])} bytes of JSON -> {len(sample)} bytes on the wire")
        for renderer, (best, median) in zip(renderers, rendered, strict=True):
            name = "compiled encoder" if renderer.compiled else "pure-Python encoder"
            label = f"json line -> framed syslog, {name}"
            print(
                f"  {label:48s}{best:>9,.0f} events/s (median {median:,.0f}) "
                f"| baseline json.loads alone: {base_best:,.0f} lines/s "
                f"(median {base_median:,.0f}) | ratio {best / base_best:.2f}"
            )
        label = "orjson.loads alone (the parser the encoders use)"
        print(f"  {label:48s}{parse_best:>9,.0f} lines/s  (median {parse_median:,.0f})")


if __name__ == "__main__":
    main()
