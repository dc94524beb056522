"""The reader never loses a valid line: resynchronisation after cut-off and garbage lines,
deep nesting as a rejection, for ``send-event`` (real SQLite queue) and ``format-event``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azs_syslog.queue import Queue
from tests.conftest import run_cli
from tests.test_events_reader import read


def pep(marker: str, **extra: object) -> str:
    event = {
        "type": "pep",
        "event": "PrivilegedEndpointAccessed",
        "who": marker,
        "which_ip": "10.0.0.1",
        **extra,
    }
    return json.dumps(event, separators=(",", ":"))


def queued_markers(home: Path) -> list[str]:
    """The ``who`` of every event in the queue at ``home`` (one entry per queued row)."""
    markers: list[str] = []
    with Queue() as queue:  # the queue of AZS_SYSLOG_HOME, which is `home`
        for batch in queue.next_batches(limit=1000):
            for _accepted, raw in queue.load_raw(batch.id) or []:
                markers.append(json.loads(raw)["who"])
    return markers


@contextmanager
def fresh_home() -> Iterator[Path]:
    """A new AZS_SYSLOG_HOME for one hypothesis example (the test's fixture is per test)."""
    before = os.environ.get("AZS_SYSLOG_HOME")
    with tempfile.TemporaryDirectory() as directory:
        os.environ["AZS_SYSLOG_HOME"] = directory
        try:
            yield Path(directory)
        finally:
            if before is None:
                del os.environ["AZS_SYSLOG_HOME"]
            else:
                os.environ["AZS_SYSLOG_HOME"] = before


# --- the reported reproductions ------------------------------------------------------------------

VALID_1 = pep("first")
VALID_3 = pep("third")


def test_cut_off_line_does_not_swallow_the_next_valid_line(tmp_path: Path) -> None:
    for cut in ("{", '{"type":"pep","event":"PrivilegedEndpointAccessed",'):
        source = tmp_path / "events.jsonl"
        source.write_text(f"{VALID_1}\n{cut}\n{VALID_3}\n")
        assert [n for n, _ in read(source.read_text())] == [1, 2, 3]

        result = run_cli(["send-event", "--json", str(source)])
        assert result.exit_code == 3, result.stderr
        report = json.loads(result.stdout)
        assert report["accepted"] == 2
        assert [r["line"] for r in report["rejected"]] == [2]

        shown = run_cli(["format-event", "--json", str(source)])
        assert shown.exit_code == 3
        lines = [json.loads(row) for row in shown.stdout.splitlines()]
        assert [(row["line"], "message" in row) for row in lines] == [
            (1, True),
            (2, False),
            (3, True),
        ]
    with Queue() as queue:
        assert queue.depth().events == 4


def test_deep_nesting_is_a_rejection_with_its_line(tmp_path: Path) -> None:
    deep_object = '{"a":' * 100_000 + "1" + "}" * 100_000
    deep_cut = '{"a":' * 100_000
    deep_array = "[" * 100_000
    source = tmp_path / "deep.jsonl"
    source.write_text(
        "\n".join([VALID_1, deep_object, pep("x3"), deep_cut, pep("x5"), deep_array, pep("x7")])
        + "\n"
    )
    result = run_cli(["send-event", str(source)])
    assert result.exit_code == 3, result.stderr
    assert "internal error" not in result.stderr
    for line in (2, 4, 6):
        assert f"rejected: line {line}: invalid JSON: nested too deeply" in result.stderr
    assert f"accepted 4 events from {source}, rejected 3;" in result.stderr
    assert sorted(queued_markers(tmp_path)) == ["first", "x3", "x5", "x7"]

    shown = run_cli(["format-event", "--json", str(source)])
    assert shown.exit_code == 3
    rows = [json.loads(row) for row in shown.stdout.splitlines()]
    assert [row["line"] for row in rows if "message" in row] == [1, 3, 5, 7]
    assert [row["line"] for row in rows if "error" in row] == [2, 4, 6]


def test_pretty_printed_and_arrays_still_read() -> None:
    pretty = json.dumps(json.loads(pep("p1")), indent=2)
    text = f"{pretty}\n{pep('p2')}\n{pretty}\n"
    records = read(text)
    assert [n for n, _ in records] == [1, 7, 8]
    assert isinstance(records[0][1], dict) and isinstance(records[2][1], dict)
    # A pretty-printed object with a nested compact object on one of its lines.
    nested = '{\n  "type": "x",\n  "items": [\n    {"a": 1}\n  ]\n}\n'
    assert read(nested) == [(1, {"type": "x", "items": [{"a": 1}]})]
    # JSON lines after an array are read as lines, each with its own number.
    after = '[{"a": 1},\n {"b": 2}]\n{"c": 3}\nnot json\n'
    assert read(after) == [
        (1, {"a": 1}),
        (2, {"b": 2}),
        (3, '{"c": 3}'),
        (4, "not json"),
    ]


def test_array_resynchronises_after_a_broken_element() -> None:
    text = '[\n  {"a": 1},\n  {"b": ,\n  {"c": 3},\n  xyz,\n  {"d": 4}\n]\n'
    records = read(text)
    assert [(n, isinstance(r, dict)) for n, r in records] == [
        (2, True),
        (3, False),
        (4, True),
        (5, False),
        (6, True),
    ]
    # An array that is never closed: its elements are read, its first line is reported.
    records = read('[\n{"a": 1},\n{"b": 2},\n')
    assert [(n, isinstance(r, dict)) for n, r in records] == [(2, True), (3, True), (1, False)]


def test_a_broken_pretty_printed_object_reports_each_line_it_cannot_use() -> None:
    text = '{\n  "a": ,\n}\n{"ok": 1}\n'
    assert read(text) == [(1, "{"), (2, '"a": ,'), (3, "}"), (4, '{"ok": 1}')]


# --- the property: random mixtures ---------------------------------------------------------------

GARBAGE_START = "x#<!@~?"
KINDS = st.sampled_from(["valid", "valid", "valid", "cut", "garbage", "blank", "deep", "not-utf-8"])


@st.composite
def mixtures(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A list of ``(kind, line)``; valid lines carry their index in ``who``."""
    kinds = draw(st.lists(KINDS, min_size=1, max_size=25))
    lines: list[tuple[str, str]] = []
    for index, kind in enumerate(kinds):
        if kind == "valid":
            lines.append((kind, pep(f"v{index}" + "x" * draw(st.integers(0, 5)))))
        elif kind == "cut":
            full = pep(f"c{index}")
            lines.append((kind, full[: draw(st.integers(1, len(full) - 1))]))
        elif kind == "garbage":
            head = draw(st.sampled_from(GARBAGE_START))
            tail = draw(
                st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20)
            )
            lines.append((kind, head + tail.replace("\x85", " ")))
        elif kind == "not-utf-8":
            # Written as Latin-1 below: "\xe9" alone is not UTF-8.
            samples = ['{"who": "\xe9"}', "\xe9t\xe9", '{"a": "\xff']
            lines.append((kind, draw(st.sampled_from(samples))))
        elif kind == "blank":
            lines.append((kind, draw(st.sampled_from(["", "  ", "\t"]))))
        else:
            depth = draw(st.integers(1500, 4000))
            shape = draw(st.sampled_from(["object", "cut", "array"]))
            if shape == "object":
                lines.append((kind, '{"a":' * depth + "1" + "}" * depth))
            elif shape == "cut":
                lines.append((kind, '{"a":' * depth))
            else:
                lines.append((kind, "[" * depth))
    return lines


def expected(lines: list[tuple[str, str]]) -> tuple[list[str], list[int]]:
    valid = [json.loads(line)["who"] for kind, line in lines if kind == "valid"]
    invalid = [n for n, (kind, _) in enumerate(lines, start=1) if kind not in ("valid", "blank")]
    return valid, invalid


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mixtures())
def test_every_valid_line_is_accepted_once_and_every_invalid_line_reported(
    lines: list[tuple[str, str]],
) -> None:
    valid, invalid = expected(lines)
    data = b"".join(
        (line.encode("latin-1") if kind == "not-utf-8" else line.encode()) + b"\n"
        for kind, line in lines
    )
    with fresh_home() as home:
        source = home / "events.jsonl"
        source.write_bytes(data)

        # The JSON reader: a garbage first line starting with "<" is not taken for XML.
        result = run_cli(["send-event", "--json", "--input-format", "json", str(source)])
        report = json.loads(result.stdout)
        assert sorted(r["line"] for r in report["rejected"]) == invalid
        assert report["accepted"] == len(valid)
        assert sorted(queued_markers(home)) == sorted(valid)
        assert result.exit_code == (0 if not invalid else 3 if valid else 1)

        shown = run_cli(["format-event", "--json", "--input-format", "json", str(source)])
        rows = [json.loads(row) for row in shown.stdout.splitlines()]
        assert sorted(row["line"] for row in rows if "error" in row) == invalid
        shown_lines = sorted(row["line"] for row in rows if "message" in row)
        assert shown_lines == [n for n, (k, _) in enumerate(lines, start=1) if k == "valid"]


def test_a_parsed_object_too_deep_to_write_back_is_a_rejection() -> None:
    from azs_syslog.encode.render import Renderer, RenderSettings
    from azs_syslog.queue.ingest import Rejection, enqueue_records

    deep: dict[str, object] = {"a": 1}
    for _ in range(100_000):
        deep = {"a": deep}
    rejections: list[Rejection] = []
    settings = RenderSettings()
    with Queue() as queue:
        result = enqueue_records(
            [(1, deep), (2, pep("after"))],
            queue,
            Renderer(settings),
            settings.key,
            on_reject=rejections.append,
        )
    assert (result.accepted, result.rejected) == (1, 1)
    assert rejections == [Rejection(1, "invalid JSON: nested too deeply")]
