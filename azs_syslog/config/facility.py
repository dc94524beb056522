"""Syslog facilities: the names operators type and the numbers on the wire (RFC 5424 table 1).

Only the names syslog daemons and ``logger`` agree on are accepted; facilities 12-15 have no
common name and are given by number.
"""

from __future__ import annotations

from typing import Final

FACILITIES: Final[dict[str, int]] = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    **{f"local{n}": 16 + n for n in range(8)},
}


def parse_facility(value: str | int) -> int:
    """A facility name (``authpriv``, ``local0``, ...) or number 0-23 -> its number.

    Raises ``ValueError`` naming the accepted values.
    """
    if isinstance(value, int):
        number = value
    else:
        text = value.strip().lower()
        if text in FACILITIES:
            return FACILITIES[text]
        if not text.isdigit():
            raise ValueError(
                f"unknown facility {value!r}; use a number 0-23 or one of " + ", ".join(FACILITIES)
            )
        number = int(text)
    if not 0 <= number <= 23:
        raise ValueError(f"facility {number} is out of range (0-23)")
    return number


def facility_name(number: int) -> str:
    """``10`` -> ``authpriv``; a number without a common name stays a number."""
    for name, value in FACILITIES.items():
        if value == number:
            return name
    return str(number)
