"""What the listener has seen so far: the tally behind ``listen``'s summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from azs_syslog.lab.receiver.message import ReceivedMessage

# The plain counts, in the order of the JSON view.
_NUMBERS = ("received", "valid", "malformed", "dropped", "connections", "handshake_failures")


@dataclass
class Counts:
    """What the listener has seen so far."""

    received: int = 0
    valid: int = 0
    malformed: int = 0
    dropped: int = 0  # not taken from a full queue in time
    connections: int = 0
    handshake_failures: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_transport: Counter[str] = field(default_factory=Counter)
    by_peer: Counter[str] = field(default_factory=Counter)
    malformed_by_peer: Counter[str] = field(default_factory=Counter)
    connection_errors: list[str] = field(default_factory=list)

    def record(self, message: ReceivedMessage) -> None:
        """Count one message: by transport, by peer host and, when malformed, by reason."""
        self.received += 1
        self.by_transport[message.transport] += 1
        host = peer_host(message.peer)
        self.by_peer[host] += 1
        if message.valid:
            self.valid += 1
            return
        self.malformed += 1
        self.malformed_by_peer[host] += 1
        for code in dict.fromkeys(p.code for p in message.errors):
            self.by_reason[code] += 1

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in _NUMBERS}
        data["malformed_by_reason"] = dict(self.by_reason)
        for name in ("by_transport", "by_peer", "malformed_by_peer"):
            data[name] = dict(getattr(self, name))
        return data


def format_peer(address: Any) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def peer_host(peer: str) -> str:
    """The host of a ``format_peer`` string (IPv6 without its brackets)."""
    return peer.rsplit(":", 1)[0].strip("[]")
