"""What decides the bytes of a message besides the event itself: ``RenderSettings``, made from
a configuration, checked field by field; its ``key`` is stored with every queued batch, so that
the worker renders a batch again when the settings it was rendered under are no longer the
current ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from azs_syslog.config.vocabulary import OUTPUT_SEVERITIES as OUTPUT_SEVERITIES
from azs_syslog.encode import cef, syslog
from azs_syslog.errors import ConfigError

if TYPE_CHECKING:
    from azs_syslog.config import Config

# Windows levels the Default OutputSeverity forwards: Critical, Error, Warning.
DEFAULT_LEVELS: Final = frozenset({1, 2, 3})
# Bumped whenever the bytes produced for the same settings change, so queued batches rendered
# by an older release are rendered again.
ENCODING_VERSION: Final = 1


@dataclass(frozen=True)
class RenderSettings:
    """Everything that decides the bytes of a message, besides the event itself."""

    message_format: str = "rfc3164"  # or "rfc5424"
    facility: int = 10  # authpriv
    cef_version: str = "0"  # or "0.0"
    max_message_size: int = 8192  # bytes of the syslog message, framing excluded
    output_severity: str = "Default"  # or "Verbose"
    framing: str = "octet-counting"  # or "lf", or "none" (UDP: one message per datagram)
    # Write MasEventDataNames (the names of the EventData values) for Windows events.
    event_data_names: bool = False

    def __post_init__(self) -> None:
        if self.message_format not in syslog.MESSAGE_FORMATS:
            raise ConfigError(
                f"unknown message format {self.message_format!r} (rfc3164 or rfc5424)",
                field="message_format",
            )
        if type(self.facility) is not int or not 0 <= self.facility <= 23:
            raise ConfigError(
                f"facility must be a number from 0 to 23, not {self.facility!r}", field="facility"
            )
        if self.cef_version not in cef.CEF_VERSIONS:
            raise ConfigError(
                f"unknown CEF version label {self.cef_version!r} (0 or 0.0)", field="cef_version"
            )
        if type(self.max_message_size) is not int or not (
            syslog.MIN_MESSAGE_SIZE <= self.max_message_size <= 16 * 1024 * 1024
        ):
            raise ConfigError(
                f"maximum message size must be {syslog.MIN_MESSAGE_SIZE} to 16777216 bytes, "
                f"not {self.max_message_size!r}",
                field="max_message_size",
            )
        severity = next(
            (s for s in OUTPUT_SEVERITIES if s.lower() == str(self.output_severity).lower()), None
        )
        if severity is None:
            raise ConfigError(
                f"output severity must be Default or Verbose, not {self.output_severity!r}",
                field="output_severity",
            )
        object.__setattr__(self, "output_severity", severity)
        if type(self.event_data_names) is not bool:
            raise ConfigError(
                f"event data names must be true or false, not {self.event_data_names!r}",
                field="event_data_names",
            )
        if self.framing not in syslog.FRAMINGS:
            raise ConfigError(
                f"unknown framing {self.framing!r} (octet-counting, lf or none)", field="framing"
            )

    @classmethod
    def from_config(cls, config: Config) -> RenderSettings:
        """The settings of a configuration: framing ``none`` over UDP; no server configured ->
        the defaults, except the OutputSeverity (a client setting)."""
        severity = config.client.output_severity
        server = config.server
        if server is None:
            return cls(output_severity=severity)
        return cls(
            message_format=server.message_format,
            facility=server.facility,
            cef_version=server.cef_version,
            max_message_size=server.max_message_size,
            output_severity=severity,
            framing="none" if server.use_udp else server.framing,
            event_data_names=server.event_data_names,
        )

    @property
    def key(self) -> str:
        """A stable fingerprint of every field (stored with queued batches). Without the
        event data names it is what it was before that setting existed, so that batches queued
        then are not rendered again."""
        return (
            f"v{ENCODING_VERSION}:{self.message_format}:{self.facility}:{self.cef_version}:"
            f"{self.max_message_size}:{self.output_severity}:{self.framing}"
            + (":names" if self.event_data_names else "")
        )
