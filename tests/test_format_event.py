"""``azs-syslog format-event``: every SPEC event round-trips into the documented fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cef_decoder import decode_syslog, unframe_octet_counted
from tests.conftest import run_cli, run_cli_process
from tests.test_cef_golden import PRI, SPEC_EVENTS


def _write(tmp_path: Path, events: list[object]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


@pytest.mark.parametrize("message_format", ["rfc3164", "rfc5424"])
def test_every_spec_event_round_trips(tmp_path: Path, message_format: str) -> None:
    """The issue's definition of done: every event of SPEC section 5's tables, through
    format-event, decodes (strictly) to exactly the documented header and extensions."""
    path = _write(tmp_path, [event for event, _, _ in SPEC_EVENTS])
    result = run_cli(
        [
            "format-event",
            str(path),
            "--output-severity",
            "Verbose",
            "--message-format",
            message_format,
        ]
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(SPEC_EVENTS)
    for line, (event, header, extensions) in zip(lines, SPEC_EVENTS, strict=True):
        decoded = decode_syslog(line.encode())
        assert decoded.cef.header == ["0", "Microsoft", "Microsoft Azure Stack Hub", "1.0", *header]
        assert decoded.cef.extensions == [("rt", "1795687200123"), *extensions]
        assert decoded.host == event["host"]
        assert decoded.pri == PRI[int(header[2])]


def test_flags_override_the_configuration(tmp_path: Path) -> None:
    event = dict(SPEC_EVENTS[0][0])
    path = _write(tmp_path, [event])
    result = run_cli(
        [
            "format-event",
            str(path),
            "--facility",
            "local0",
            "--cef-version",
            "0.0",
            "--framing",
            "octet-counting",
        ]
    )
    assert result.exit_code == 0, result.stderr
    framed = result.stdout.rstrip("\n").encode()
    (message,) = unframe_octet_counted(framed)
    assert message.startswith(b"<132>Nov 26 10:00:00 testhost CEF:0.0|Microsoft|")
    lf = run_cli(["format-event", str(path), "--framing", "lf"])
    assert lf.stdout.endswith("WhichIP=10.0.0.5\n")
    assert lf.stdout.count("\n") == 1
    bad = run_cli(["format-event", str(path), "--facility", "99"])
    assert bad.exit_code == 2
    assert "facility" in bad.stderr


def test_severity_filter_prints_nothing(tmp_path: Path) -> None:
    info = {"type": "windows", "provider_name": "P", "event_id": 1, "level": 4}
    error = {**info, "level": 2}
    path = _write(tmp_path, [info, error])
    result = run_cli(["format-event", str(path)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert "|P:1|0|8|" in lines[0]
    assert "1 Windows event(s) below Warning not shown" in result.stderr
    verbose = run_cli(["format-event", str(path), "--output-severity", "verbose"])
    assert len(verbose.stdout.splitlines()) == 2


def test_rejected_events_are_reported_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"type": "arm", "AzsOperationName": "ok"}\n'
        "\n"
        '{"type": "pep", "event": "Nope", "who": "u", "which_ip": "i"}\n'
        "{broken\n"
        '{"type": "arm", "AzsOperationName": "ok2"}\n',
        encoding="utf-8",
    )
    result = run_cli(["format-event", str(path)])
    assert result.exit_code == 3
    assert len(result.stdout.splitlines()) == 2
    assert "error: line 3: event: unknown pep event 'Nope'" in result.stderr
    assert "error: line 4: invalid JSON" in result.stderr
    as_json = run_cli(["format-event", str(path), "--json"])
    assert as_json.exit_code == 3
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 3, 4, 5]
    assert records[0]["message"].endswith("AzsOperationName=ok")
    assert records[1]["field"] == "event"
    assert "unknown pep event" in records[1]["error"]
    assert records[2]["field"] is None


def test_stdin_in_a_child_process() -> None:
    lines = b"".join(json.dumps(e).encode() + b"\n" for e, _, _ in SPEC_EVENTS[:3])
    proc = run_cli_process(
        ["format-event", "-", "--message-format", "rfc5424", "--json"], input=lines
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3]
    decoded = decode_syslog(records[0]["message"].encode())
    assert decoded.msgid == "pep"
    assert decoded.timestamp == "2026-11-26T10:00:00.123Z"


def test_json_array_input(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps([e for e, _, _ in SPEC_EVENTS[:2]], indent=2), encoding="utf-8")
    result = run_cli(["format-event", str(path), "--json"])
    assert result.exit_code == 0
    assert [json.loads(line)["line"] for line in result.stdout.splitlines()] == [2, 10]


def test_every_example_in_the_mapping_doc_is_real_output(tmp_path: Path) -> None:
    """docs/cef-mapping.md shows real messages: each is format-event output for a SPEC event."""
    doc = Path(__file__).resolve().parent.parent / "docs" / "cef-mapping.md"
    examples = [line for line in doc.read_text(encoding="utf-8").splitlines() if line[:2] == "<8"]
    assert len(examples) >= 9
    path = _write(tmp_path, [event for event, _, _ in SPEC_EVENTS])
    result = run_cli(["format-event", str(path), "--output-severity", "Verbose"])
    produced = set(result.stdout.splitlines())
    for example in examples:
        assert example in produced, example
