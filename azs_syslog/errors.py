"""The exception hierarchy. Library code raises these; only ``cli/`` turns them into text.

Every error carries a message meant for an operator (what failed and why) and, where there is
one, ``fix``: what to do about it. Nothing here may hold a password or a private key.
"""

from __future__ import annotations


class AzsSyslogError(Exception):
    """Base class of every error azs-syslog reports to an operator."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message


class ConfigError(AzsSyslogError):
    """The configuration is invalid, unreadable, or a requested change is not allowed.

    ``path`` is the file concerned and ``field`` the setting (``server -> ServerPort``).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.path = path
        self.field = field

    def __str__(self) -> str:
        where = ""
        if self.path and self.field:
            where = f"{self.path}: {self.field}: "
        elif self.path:
            where = f"{self.path}: "
        elif self.field:
            where = f"{self.field}: "
        return where + self.message


class CertificateError(AzsSyslogError):
    """A client certificate (PFX) or a CA file failed a check; nothing was stored."""


class EventError(AzsSyslogError):
    """An input event is invalid. ``field`` names the offending field, ``line`` its line."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.field = field
        self.line = line

    def __str__(self) -> str:
        prefix = f"line {self.line}: " if self.line is not None else ""
        if self.field:
            prefix += f"{self.field}: "
        return prefix + self.message


REPAIR_FIX = (
    "the queue file is damaged: stop the forwarder, then run azs-syslog forwarder repair"
    " (it keeps the damaged file and recovers every readable event)"
)

# SQLite's result codes for a damaged database file. A short read (the file ends before a
# page it refers to) is reported as an I/O error, but is damage too.
_DAMAGE_CODES = frozenset(("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ"))
_DAMAGE_TEXTS = ("malformed", "file is not a database")


def is_damaged_database(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the database file is damaged,
    as opposed to unreadable for a reason the operator fixes otherwise (permissions, space)."""
    for _ in range(8):  # a short chain: QueueError from sqlite3.Error, at most re-raised once
        if exc is None:
            return False
        name = str(getattr(exc, "sqlite_errorname", ""))
        if name.startswith("SQLITE_CORRUPT") or name in _DAMAGE_CODES:
            return True
        if any(text in str(exc) for text in _DAMAGE_TEXTS):
            return True
        exc = exc.__cause__
    return False


class QueueError(AzsSyslogError):
    """The durable queue could not be opened or written.

    When the error comes from a damaged database file (see ``is_damaged_database``), its fix
    names ``forwarder repair``, whatever fix the raiser gave: the raiser cannot tell damage
    from other failures of the same statement, this can.
    """

    @property
    def fix(self) -> str | None:
        if is_damaged_database(self):
            return REPAIR_FIX
        return self._fix

    @fix.setter
    def fix(self, value: str | None) -> None:
        self._fix = value


class AccessError(AzsSyslogError):
    """The running user may not read or write one of azs-syslog's files or directories.

    ``path`` is the file or directory that refused access (not always the one asked for: a
    private directory on the way refuses for everything below it).
    """

    def __init__(self, message: str, *, path: str, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.path = path


class TransportError(AzsSyslogError):
    """Connecting to or sending to the syslog server failed.

    ``step`` is where it failed (``dns``, ``connect``, ``tls``, ``verify``, ``send``); ``cause``
    a short machine-readable reason (``unknown-ca``, ``name-mismatch``, ``refused``, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        step: str,
        cause: str,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.step = step
        self.cause = cause
