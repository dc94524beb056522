"""Syslog framing, headers, PRI and the size limit (SPEC section 6)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azs_syslog.encode import syslog
from tests.cef_decoder import unframe_octet_counted


@pytest.mark.parametrize(
    ("cef_severity", "syslog_severity"),
    [(10, 2), (9, 2), (8, 3), (7, 3), (6, 4), (5, 4), (4, 4), (3, 6), (2, 6), (1, 6), (0, 7)],
)
def test_pri_from_facility_and_severity(cef_severity: int, syslog_severity: int) -> None:
    assert syslog.pri(10, cef_severity) == 80 + syslog_severity
    assert syslog.pri(0, cef_severity) == syslog_severity
    assert syslog.pri(23, cef_severity) == 184 + syslog_severity


def test_rfc3164_timestamp_is_utc_with_a_space_padded_day() -> None:
    assert syslog.rfc3164_timestamp(1795687200) == "Nov 26 10:00:00"
    assert syslog.rfc3164_timestamp(1780650305) == "Jun  5 09:05:05"
    assert syslog.rfc3164_timestamp(0) == "Jan  1 00:00:00"


def test_headers() -> None:
    assert syslog.rfc3164_header(86, 1795687200123, "h") == "<86>Nov 26 10:00:00 h "
    assert (
        syslog.rfc5424_header(86, 1795687200007, "h", "windows")
        == "<86>1 2026-11-26T10:00:00.007Z h azs-syslog - windows - "
    )


def test_framing() -> None:
    message = "<86>x 日本".encode()
    assert syslog.frame(message, "octet-counting") == b"12 " + message
    assert unframe_octet_counted(syslog.frame(message, "octet-counting") * 2) == [message] * 2
    assert syslog.frame(message, "lf") == message + b"\n"
    assert syslog.frame(message, "none") == message


@pytest.mark.parametrize(
    ("name", "number"),
    [("authpriv", 10), ("LOCAL7", 23), ("kern", 0), ("4", 4), (13, 13), ("13", 13)],
)
def test_facilities(name: str | int, number: int) -> None:
    assert syslog.parse_facility(name) == number


@pytest.mark.parametrize("bad", ["24", "nope", "-1", 99])
def test_bad_facilities(bad: str | int) -> None:
    with pytest.raises(ValueError, match="facility"):
        syslog.parse_facility(bad)


@pytest.mark.parametrize(
    ("data", "size", "expected"),
    [
        (b"abcdef", 3, b"abc"),
        (b"abcdef", 10, b"abcdef"),
        (b"abcdef", 0, b""),
        ("日本".encode(), 4, "日".encode()),  # never inside a character
        ("日本".encode(), 2, b""),
        (b"ab\\=cd", 3, b"ab"),  # never inside an escape
        (b"ab\\=cd", 4, b"ab\\="),
        (b"ab\\\\cd", 3, b"ab"),
        (b"ab\\\\\\=", 5, b"ab\\\\"),
    ],
)
def test_cut(data: bytes, size: int, expected: bytes) -> None:
    assert syslog.cut(data, size) == expected


def test_fit_cuts_the_longest_values_first() -> None:
    head = b"<86>Nov 26 10:00:00 h CEF:0|M|P|1.0|"
    pairs = [(b"a", b"x" * 100), (b"b", b"y" * 10), (b"c", b"z" * 300)]
    untouched = syslog.fit(head, b"S", b"N", b"|5|rt=1", pairs, 10_000)
    assert untouched.endswith(b" a=" + b"x" * 100 + b" b=" + b"y" * 10 + b" c=" + b"z" * 300)
    limit = len(untouched) - 250
    fitted = syslog.fit(head, b"S", b"N", b"|5|rt=1", pairs, limit)
    assert len(fitted) <= limit
    assert len(fitted) >= limit - 2
    assert b" b=" + b"y" * 10 + b" " in fitted  # the short value is untouched
    values = dict(part.split(b"=", 1) for part in fitted.split(b"rt=1 ")[1].split(b" "))
    assert len(values[b"a"]) == len(values[b"c"])  # both cut to the same length


def test_fit_leaves_out_pairs_rather_than_cut_values_to_nothing() -> None:
    head = b"<86>Nov 26 10:00:00 h CEF:0|M|P|1.0|"
    pairs = [(f"Key{i:02d}".encode(), b"v" * 40) for i in range(30)]
    fitted = syslog.fit(head, b"S", b"N", b"|5|rt=1", pairs, 480)
    assert len(fitted) <= 480
    kept = fitted.split(b"rt=1 ")[1].split(b" ")
    assert kept[0].startswith(b"Key00=")  # the first pairs stay, the last ones go
    assert all(len(part.split(b"=")[1]) >= syslog.MIN_KEPT_VALUE for part in kept)


def test_fit_last_resort_cuts_the_name_then_the_signature() -> None:
    head = b"<86>Nov 26 10:00:00 h CEF:0|M|P|1.0|"
    fitted = syslog.fit(head, b"S" * 300, b"N" * 300, b"|5|rt=1", [(b"k", b"v" * 50)], 480)
    assert len(fitted) <= 480
    assert fitted.endswith(b"|5|rt=1")
    assert b"S" * 300 in fitted
    fitted = syslog.fit(head, b"S" * 600, b"N" * 300, b"|5|rt=1", [], 480)
    assert len(fitted) == 480
    assert b"||5|rt=1" in fitted  # the name is gone, the signature cut


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=200), size=st.integers(0, 800))
def test_cut_property(text: str, size: int) -> None:
    """Any cut of escaped text is a prefix within the size, valid UTF-8, with no half escape,
    and as long as possible (at most 4 bytes shorter than asked)."""
    from azs_syslog.encode import cef

    escaped = cef.escape_value(text).encode()
    result = syslog.cut(escaped, size)
    assert escaped.startswith(result)
    assert len(result) <= max(size, 0)
    result.decode("utf-8")
    trailing = len(result) - len(result.rstrip(b"\\"))
    assert trailing % 2 == 0
    assert len(result) >= min(size, len(escaped)) - 4
