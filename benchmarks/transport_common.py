"""What the transport benchmarks share: the ~700-byte CEF messages they send, their batches
as the senders take them (one blob and its lengths), and counting what a receiver wrote."""

from __future__ import annotations

from pathlib import Path

MESSAGE_SIZE = 700
HEAD = b"<134>Nov 26 10:00:00 host01.example.com CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"


def build_messages(count: int, event: bytes = b"Security:4624") -> list[bytes]:
    """``count`` messages of ``MESSAGE_SIZE`` bytes, numbered, for the CEF event ``event``."""
    out = []
    for i in range(count):
        body = HEAD + event + b"|Logon|2|MasEventID=4624 n=%d " % i
        out.append(body + b"x" * (MESSAGE_SIZE - len(body)))
    return out


def batches(messages: list[bytes], size: int, *, framed: bool) -> list[tuple[bytes, list[int]]]:
    """Blobs of ``size`` messages and their lengths; ``framed``: octet-counted (TCP, TLS)."""
    result = []
    for start in range(0, len(messages), size):
        chunk = messages[start : start + size]
        frames = [b"%d %s" % (len(m), m) for m in chunk] if framed else chunk
        result.append((b"".join(frames), [len(f) for f in frames]))
    return result


def count_lines(path: Path) -> int:
    """The lines in ``path`` (0 while it does not exist), read in 1 MiB pieces."""
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return 0
