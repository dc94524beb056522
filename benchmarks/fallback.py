"""Benchmark: the pure-Python encoder (``Renderer(settings, compiled=False)``) of several trees,
side by side in one run (``--compiled``: their compiled encoders, each tree's extension built in
place).

Each tree runs in its own worker process (``PYTHONPATH`` = that tree; the renderer is imported
from ``azs_syslog.encode.render``, or ``azs_syslog.render`` in trees from before the package
was split into rooms). The workers render the same lines (written once to a temporary file by
this tree: ``encode.make_lines`` and ``encode.real_lines``) and take turns, one run each, so
that all see the same moments of a shared machine. Each figure is the best of ``--repeat``
runs in CPU time (``time.process_time``) of ``render_line`` over every line; the bytes of the
trees are compared (a digest of every rendered line). Not a test.

    PYTHONPATH=. python benchmarks/fallback.py [--base /path/to/other/tree ...] [--events N]
        [--repeat R]

Without ``--base`` it times this tree alone; each ratio is this tree's rate over that tree's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
FORMATS = ("rfc3164", "rfc5424")


def worker(lines_path: str, compiled: bool = False) -> None:
    """Read commands from stdin (``set format digest|-``), run ``render_line`` over that set
    once and answer with the CPU time (and, asked, a digest of the bytes), one JSON line
    each."""
    try:
        from azs_syslog.encode.render import Renderer, RenderSettings
    except ImportError:  # a tree from before the rooms
        from azs_syslog.render import Renderer, RenderSettings  # type: ignore[no-redef, import-not-found]

    sets: dict[str, list[str]] = json.loads(Path(lines_path).read_text())
    accepted = 1_795_687_200_000
    for command in sys.stdin:
        name, message_format, check = command.split()
        settings = RenderSettings(message_format=message_format, output_severity="Verbose")
        # A new renderer per run: every run makes its plans and caches again, as a new
        # process would (the first line of each shape takes the reference path).
        render_line = Renderer(settings, default_host="bench-host", compiled=compiled).render_line
        lines = sets[name]
        started = time.process_time()
        for line in lines:
            render_line(line, accepted)
        spent = time.process_time() - started
        digest = hashlib.sha256()
        if check == "digest":  # the bytes of a new renderer (its first lines: reference path)
            render_line = Renderer(
                settings, default_host="bench-host", compiled=compiled
            ).render_line
            for line in lines:
                digest.update(render_line(line, accepted) or b"-")
        print(json.dumps({"seconds": spent, "digest": digest.hexdigest()}), flush=True)


def make_sets(events: int) -> dict[str, list[str]]:
    sys.path.insert(0, str(HERE))
    from encode import make_lines, real_lines

    real, typed, _ = real_lines()
    passes = max(1, events // len(real))
    return {
        "real": real * passes,
        "typed": typed * passes,
        "path": make_lines(events, with_path=True),
        "plain": make_lines(events, with_path=False),
    }


def start(tree: Path, lines_path: str, compiled: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", lines_path, *(["--compiled"] if compiled else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(tree),
    )


def ask(proc: subprocess.Popen[str], name: str, message_format: str, check: bool) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{name} {message_format} {'digest' if check else '-'}\n")
    proc.stdin.flush()
    answer: dict[str, Any] = json.loads(proc.stdout.readline())
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--base", type=Path, action="append", default=[], help="a tree to compare with (repeat)"
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="time the compiled encoder instead (each tree's own extension, built in place)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.compiled)
        return
    trees = [("this tree", TREE)] + [
        (f"base {n + 1}", b.resolve()) for n, b in enumerate(args.base)
    ]
    sets = make_sets(args.events)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(sets, handle)
    try:
        procs = [start(tree, handle.name, args.compiled) for _, tree in trees]
        print(
            f"{'compiled' if args.compiled else 'pure-Python'} encoder, "
            f"best of {args.repeat} runs (CPU time), the trees in turn; "
            + ", ".join(f"{name}: {tree}" for name, tree in trees)
        )
        for message_format in FORMATS:
            for name, lines in sets.items():
                best = [float("inf")] * len(procs)
                digests = set()
                for run in range(args.repeat):
                    # Rotate which tree goes first, so none always follows another.
                    order = list(range(len(procs)))
                    order = order[run % len(order) :] + order[: run % len(order)]
                    for index in order:
                        answer = ask(procs[index], name, message_format, run == 0)
                        best[index] = min(best[index], answer["seconds"])
                        if run == 0:
                            digests.add(answer["digest"])
                rates = [len(lines) / seconds for seconds in best]
                same = "same bytes" if len(digests) == 1 else "BYTES DIFFER"
                text = " | ".join(
                    f"{tree}: {rate:,.0f}/s" for (tree, _), rate in zip(trees, rates, strict=True)
                )
                ratios = "".join(
                    f" | ratio to {tree}: {rates[0] / rate:.3f}"
                    for (tree, _), rate in zip(trees[1:], rates[1:], strict=True)
                )
                print(
                    f"  {message_format} {name:6s} {len(lines):>7,} lines: {text}{ratios} ({same})"
                )
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
    finally:
        os.unlink(handle.name)


if __name__ == "__main__":
    main()
