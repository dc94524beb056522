"""The receiver's pure parts: framing detection and the strict syslog/CEF checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azs_syslog.lab import receiver
from azs_syslog.lab.receiver import StreamFramer, parse_message

PEP_SIGNATURE = "Microsoft-AzureStack-PrivilegedEndpoint: 1000"


def cef(
    extensions: str = "Who=admin WhichIP=10.0.0.1",
    *,
    version: str = "0",
    signature: str = PEP_SIGNATURE,
    name: str = "PrivilegedEndpointAccessedEvent",
    severity: str = "5",
    vendor: str = "Microsoft",
) -> str:
    return (
        f"CEF:{version}|{vendor}|Microsoft Azure Stack Hub|1.0|{signature}|{name}|{severity}|"
        + extensions
    )


def rfc3164(payload: str, *, pri: str = "85", host: str = "azs-node1") -> bytes:
    return f"<{pri}>Nov 26 10:00:00 {host} {payload}".encode()


def rfc5424(payload: str, *, sd: str = "-", pri: str = "85") -> bytes:
    return f"<{pri}>1 2026-11-26T10:00:00.123Z azs-node1 azs-syslog - PEP {sd} {payload}".encode()


def codes(message: receiver.ReceivedMessage) -> list[str]:
    return [problem.code for problem in message.errors]


# -- valid messages ------------------------------------------------------------------------


def test_rfc3164_cef_is_decoded() -> None:
    message = parse_message(rfc3164(cef(r"Who=admin WhichIP=10.0.0.1 msg=a b\=c\\d\nline2 x=")))
    assert message.valid, message.errors
    assert (message.pri, message.facility, message.severity) == (85, 10, 5)
    assert message.header_format == "rfc3164"
    assert message.timestamp == "Nov 26 10:00:00"
    assert message.host == "azs-node1"
    assert message.cef_version == "0"
    assert (message.vendor, message.product, message.device_version) == (
        "Microsoft",
        "Microsoft Azure Stack Hub",
        "1.0",
    )
    assert message.signature_id == PEP_SIGNATURE
    assert message.name == "PrivilegedEndpointAccessedEvent"
    assert message.cef_severity == "5"
    assert list(message.extensions.items()) == [
        ("Who", "admin"),
        ("WhichIP", "10.0.0.1"),
        ("msg", "a b=c\\d\nline2"),
        ("x", ""),
    ]
    assert message.notes == []


def test_rfc5424_with_structured_data_and_bom() -> None:
    sd = r'[origin@32473 ip="10.0.0.1" note="a \"quoted\" ] value"][meta x="1"]'
    message = parse_message(rfc5424("\ufeff" + cef(), sd=sd))
    assert message.valid, message.errors
    assert message.header_format == "rfc5424"
    assert message.timestamp == "2026-11-26T10:00:00.123Z"
    assert (message.host, message.app_name, message.procid, message.msgid) == (
        "azs-node1",
        "azs-syslog",
        "-",
        "PEP",
    )
    assert message.structured_data == sd
    assert message.extensions == {"Who": "admin", "WhichIP": "10.0.0.1"}
    assert any("BOM" in note for note in message.notes)


def test_header_escapes_and_pipes_in_extension_values() -> None:
    message = parse_message(
        rfc3164(cef("cs1=a|b request=x", name=r"Name with \| pipe and \\ slash"))
    )
    assert message.valid, message.errors
    assert message.name == "Name with | pipe and \\ slash"
    assert message.extensions == {"cs1": "a|b", "request": "x"}


def test_cef_version_0_0_is_a_note_not_an_error() -> None:
    message = parse_message(rfc3164(cef(version="0.0")))
    assert message.valid
    assert message.cef_version == "0.0"
    assert any("0.0" in note for note in message.notes)


@pytest.mark.parametrize("severity", ["0", "10", "Low", "Very-High", "unknown"])
def test_cef_severities_accepted(severity: str) -> None:
    assert parse_message(rfc3164(cef(severity=severity))).valid


def test_tag_before_cef_is_a_note() -> None:
    message = parse_message(rfc3164("CEF-relay[42]: " + cef()))
    assert message.valid, message.errors
    assert message.signature_id == PEP_SIGNATURE
    assert any("TAG" in note for note in message.notes)


def test_trailing_lf_of_a_datagram_is_not_content() -> None:
    message = parse_message(rfc3164(cef("a=1")) + b"\n", framing="datagram")
    assert message.valid
    assert message.extensions == {"a": "1"}


# -- malformed messages: each flagged with its reason ---------------------------------------

MALFORMED = [
    pytest.param(rfc3164(cef(), pri="192"), "bad-pri", id="pri-out-of-range"),
    pytest.param(rfc3164(cef(), pri="013"), "bad-pri", id="pri-leading-zero"),
    pytest.param(rfc3164(cef(), pri="x"), "bad-pri", id="pri-not-a-number"),
    pytest.param(b"Nov 26 10:00:00 h " + cef().encode(), "bad-pri", id="pri-missing"),
    pytest.param(b"", "bad-pri", id="empty"),
    pytest.param(f"<85>{cef()}".encode(), "bad-syslog-header", id="header-missing"),
    pytest.param(f"<85>Nox 26 10:00:00 h {cef()}".encode(), "bad-syslog-header", id="bad-month"),
    pytest.param(f"<85>Nov 26 25:00:00 h {cef()}".encode(), "bad-syslog-header", id="bad-hour"),
    pytest.param(f"<85>Nov 26 10:00:00 {cef()}".encode(), "bad-syslog-header", id="no-host"),
    pytest.param(
        f"<85>2 2026-11-26T10:00:00Z h a - m - {cef()}".encode(),
        "bad-syslog-header",
        id="rfc5424-version",
    ),
    pytest.param(
        f"<85>1 2026-13-26T10:00:00Z h a - m - {cef()}".encode(),
        "bad-syslog-header",
        id="rfc5424-timestamp",
    ),
    pytest.param(rfc5424(cef(), sd="[unterminated"), "bad-syslog-header", id="rfc5424-sd"),
    pytest.param(rfc3164("hello world"), "not-cef", id="not-cef"),
    pytest.param(
        rfc3164("CEF:0|Microsoft|Product|1.0|Sig|Name|a=1"),
        "bad-cef-header-count",
        id="six-header-fields",
    ),
    pytest.param(rfc3164(cef(name=r"bad \x escape")), "bad-header-escape", id="header-escape"),
    pytest.param(rfc3164(cef(version="1")), "bad-cef-version", id="cef-version"),
    pytest.param(rfc3164(cef(severity="11")), "bad-cef-severity", id="severity-11"),
    pytest.param(rfc3164(cef(severity="")), "bad-cef-severity", id="severity-empty"),
    pytest.param(rfc3164(cef(signature="")), "empty-header-field", id="empty-signature"),
    pytest.param(rfc3164(cef("Who=a bad-key=1")), "bad-extension-key", id="extension-key"),
    pytest.param(rfc3164(cef("msg=1+1=2 x=y")), "unescaped-equals", id="unescaped-equals"),
    pytest.param(rfc3164(cef("msg=a = b")), "unescaped-equals", id="equals-after-space"),
    pytest.param(rfc3164(cef(r"msg=a\tb")), "bad-extension-escape", id="extension-escape"),
    pytest.param(rfc3164(cef(r"msg=a\|b")), "bad-extension-escape", id="pipe-escape-in-value"),
    pytest.param(rfc3164(cef("msg=a\\")), "bad-extension-escape", id="trailing-backslash"),
    pytest.param(rfc3164(cef("garbage msg=a")), "bad-extension", id="text-before-key"),
    pytest.param(rfc3164(cef("no pairs at all")), "bad-extension", id="no-pairs"),
    pytest.param(rfc3164(cef("a=1 a=2")), "duplicate-key", id="duplicate-key"),
    pytest.param(rfc3164(cef("msg=line1\nline2")), "raw-newline", id="raw-newline"),
    pytest.param(rfc3164(cef("msg=caf")) + b"\xe9 x=1", "invalid-utf8", id="invalid-utf8"),
]


@pytest.mark.parametrize(("raw", "code"), MALFORMED)
def test_malformed_message_is_flagged(raw: bytes, code: str) -> None:
    message = parse_message(raw, framing="octet-counting")
    assert not message.valid
    assert code in codes(message), message.errors
    problem = next(p for p in message.errors if p.code == code)
    assert problem.detail  # a reason an operator can read
    assert message.to_dict()["valid"] is False


def test_cef_is_still_decoded_after_a_bad_syslog_header() -> None:
    message = parse_message(f"<85>{cef()}".encode())
    assert codes(message) == ["bad-syslog-header"]
    assert message.signature_id == PEP_SIGNATURE
    assert message.extensions["Who"] == "admin"


def test_unescaped_equals_keeps_the_text_in_the_value() -> None:
    message = parse_message(rfc3164(cef("msg=1+1=2 x=y")))
    assert message.extensions == {"msg": "1+1=2", "x": "y"}


# -- framing ---------------------------------------------------------------------------------


def feed_all(framer: StreamFramer, data: bytes, chunk: int) -> list[receiver.Frame]:
    frames = []
    for start in range(0, len(data), chunk):
        frames += framer.feed(data[start : start + chunk])
    return frames + framer.close()


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_octet_counting_across_chunk_boundaries(chunk: int) -> None:
    messages = [rfc3164(cef(f"n={n}")) for n in range(5)]
    stream = b"".join(b"%d %s" % (len(m), m) for m in messages)
    frames = feed_all(StreamFramer(), stream, chunk)
    assert [f.payload for f in frames] == messages
    assert {f.framing for f in frames} == {"octet-counting"}
    assert all(not f.problems for f in frames)


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_lf_framing_with_crlf_and_a_last_line_without_lf(chunk: int) -> None:
    stream = b"<13>one\r\n<13>two\n\n<13>three"
    frames = feed_all(StreamFramer(), stream, chunk)
    assert [f.payload for f in frames] == [b"<13>one", b"<13>two", b"<13>three"]
    assert {f.framing for f in frames} == {"lf"}
    assert all(not f.problems for f in frames)


def test_bad_first_byte_is_flagged_and_resynchronised_on_lf() -> None:
    frames = feed_all(StreamFramer(), b"garbage here\n12 <13>message\n", 1000)
    assert frames[0].payload == b"garbage here"
    assert [p.code for p in frames[0].problems] == ["bad-framing"]
    # detected again after the error: the next frame is octet-counted
    assert frames[1].payload == b"<13>message\n"
    assert frames[1].framing == "octet-counting"
    assert not frames[1].problems


@pytest.mark.parametrize(
    "bad_count",
    [b"012 <13>abcdefghi\n", b"12x<13>abcdefghi\n", b"1234567890123 <13>x\n", b"0 \n"],
    ids=["leading-zero", "no-space", "too-long", "zero"],
)
def test_bad_octet_count_is_flagged_then_resynchronised(bad_count: bytes) -> None:
    good = rfc3164(cef())
    stream = b"%d %s" % (len(good), good) + bad_count + b"%d %s" % (len(good), good)
    frames = feed_all(StreamFramer(), stream, 5)
    assert frames[0].payload == good and not frames[0].problems
    assert [p.code for p in frames[1].problems] == ["bad-octet-count"]
    assert frames[2].payload == good and not frames[2].problems
    assert len(frames) == 3


def test_oversize_octet_counted_message_is_discarded_and_the_stream_stays_in_sync() -> None:
    good = rfc3164(cef())
    huge = b"<13>" + b"x" * 5000
    stream = b"%d %s%d %s" % (len(huge), huge, len(good), good)
    frames = feed_all(StreamFramer(max_size=1000), stream, 333)
    assert [p.code for p in frames[0].problems] == ["oversize"]
    assert len(frames[0].payload) <= 256
    assert frames[1].payload == good and not frames[1].problems
    assert len(frames) == 2


def test_oversize_lf_line_is_discarded() -> None:
    stream = b"<13>" + b"y" * 5000 + b"\n<13>after\n"
    frames = feed_all(StreamFramer(max_size=1000), stream, 100)
    assert [p.code for p in frames[0].problems] == ["oversize"]
    assert frames[1].payload == b"<13>after" and not frames[1].problems


def test_connection_closed_mid_message_is_truncated() -> None:
    frames = feed_all(StreamFramer(), b"100 <13>only part", 1000)
    assert [p.code for p in frames[0].problems] == ["truncated"]
    message = parse_message(
        frames[0].payload, framing="octet-counting", problems=frames[0].problems
    )
    assert codes(message) == ["truncated"]


def test_tls_client_on_a_plain_listener_is_recognised_and_abandoned() -> None:
    framer = StreamFramer()
    frames = framer.feed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert [p.code for p in frames[0].problems] == ["unexpected-tls"]
    assert framer.abandoned
    assert framer.feed(b"more\n") == [] and framer.close() == []
    message = parse_message(frames[0].payload, problems=frames[0].problems)
    assert codes(message) == ["unexpected-tls"]  # and no noise about PRI or UTF-8


def test_0x16_later_in_a_stream_is_only_bad_framing() -> None:
    frames = feed_all(StreamFramer(), b"junk\n\x16xyz\n", 1000)
    assert [[p.code for p in f.problems] for f in frames] == [["bad-framing"], ["bad-framing"]]
    assert frames[1].payload == b"\x16xyz"


# -- never crash, never grow -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(1, 400), max_size=20))
def test_framer_never_raises_and_stays_bounded(data: bytes, cuts: list[int]) -> None:
    framer = StreamFramer(max_size=512)
    position = 0
    for cut in [*cuts, len(data)]:
        frames = framer.feed(data[position : position + cut])
        position += cut
        assert len(framer._buffer) <= 512 + 2 + 10
        for frame in frames:
            assert len(frame.payload) <= 512
            parse_message(frame.payload, framing=frame.framing, problems=frame.problems)
    framer.close()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(1, 50), max_size=30))
def test_framing_does_not_depend_on_how_the_stream_is_cut(data: bytes, cuts: list[int]) -> None:
    whole = StreamFramer(max_size=256)
    expected = whole.feed(data) + whole.close()
    pieces = StreamFramer(max_size=256)
    got = []
    position = 0
    for cut in [*cuts, len(data)]:
        got += pieces.feed(data[position : position + cut])
        position += cut
    got += pieces.close()
    assert [(f.payload, [p.code for p in f.problems]) for f in got] == [
        (f.payload, [p.code for p in f.problems]) for f in expected
    ]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_parse_never_raises(raw: bytes) -> None:
    message = parse_message(raw)
    assert isinstance(message.valid, bool)
    assert "internal-error" not in codes(message)
    message.to_dict()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parse_never_raises_on_mutated_cef(tail: bytes) -> None:
    for prefix in (rfc3164("CEF:0|"), rfc3164(cef("")), rfc5424("CEF:0|a|b|c|d|e|5|")):
        message = parse_message(prefix + tail)
        assert "internal-error" not in codes(message)


PATHOLOGICAL = [
    b"a=" + b"=" * 65000,
    b"x=" * 32000,
    b"a=b " * 16000,
    b" " * 65000 + b"=",
    b"\\" * 65000,
    b"|" * 65000,
    b"\\=" * 21000,
]


@pytest.mark.timeout(120)  # a guard against quadratic blow-ups, not a speed measurement
@pytest.mark.parametrize("extension", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_64k_messages_are_checked(extension: bytes) -> None:
    message = parse_message(rfc3164("CEF:0|a|b|c|d|e|5|") + extension)
    assert isinstance(message.valid, bool)
    assert "internal-error" not in codes(message)


@pytest.mark.timeout(120)  # a guard against rescanning the buffer on every byte
def test_a_long_line_arriving_byte_by_byte() -> None:
    framer = StreamFramer()
    line = b"<13>" + b"x" * 60000
    frames = [frame for byte in range(len(line)) for frame in framer.feed(line[byte : byte + 1])]
    assert frames == []
    (frame,) = framer.feed(b"\n")
    assert frame.payload == line and not frame.problems


def escape_header(value: str) -> str:
    """SPEC section 6, header fields."""
    value = value.replace("\\", "\\\\").replace("|", "\\|")
    return value.replace("\r", " ").replace("\n", " ")


def escape_value(value: str) -> str:
    """SPEC section 6, extension values."""
    value = value.replace("\\", "\\\\").replace("=", "\\=")
    return value.replace("\r", "\\r").replace("\n", "\\n")


header_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), min_size=1
).filter(lambda s: s.strip() != "")
value_text = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1).filter(
    lambda s: s == s.strip(" ") and s != ""
)


@settings(max_examples=300, deadline=None)
@given(
    name=header_text,
    signature=header_text,
    pairs=st.dictionaries(
        st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True), value_text, max_size=6
    ),
)
def test_anything_escaped_per_spec_round_trips(
    name: str, signature: str, pairs: dict[str, str]
) -> None:
    """Whatever the values, text escaped per SPEC section 6 parses back to the same values."""
    extensions = " ".join(f"{k}={escape_value(v)}" for k, v in pairs.items())
    raw = rfc3164(cef(extensions, name=escape_header(name), signature=escape_header(signature)))
    message = parse_message(raw, framing="octet-counting")
    assert message.valid, message.errors
    assert message.name == name
    assert message.signature_id == signature
    assert message.extensions == pairs
