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


class QueueError(AzsSyslogError):
    """The durable queue could not be opened or written."""


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
