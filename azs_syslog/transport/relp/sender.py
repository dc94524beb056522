"""The RELP session of a sender: ``syslog`` frames out, up to a window of them unanswered, the
``rsp`` answers read and counted, ``close`` at the end. ``unacknowledged_bytes()`` is the part
of the sent blobs whose frames are not answered ``200`` yet."""

from __future__ import annotations

import collections
import contextlib
import socket
import time
from collections.abc import Sequence

from azs_syslog.errors import TransportError
from azs_syslog.transport.base import ConnectionInfo, IoWatch, Timeouts, write_stalled_error
from azs_syslog.transport.relp.frames import (
    MAX_TXNR,
    QUICKACK,
    RECV_SIZE,
    WINDOW,
    Frame,
    FrameReader,
    ProtocolViolation,
    RelpConnectionInfo,
    encode,
    next_txnr,
    parse_response,
    unframe,
    violation_error,
)


class RelpSender:
    """A RELP session over a connected (and, for TLS, verified) socket; see the module doc."""

    exact_acknowledgement = True
    info: ConnectionInfo  # a RelpConnectionInfo (typed as the Sender interface has it)

    def __init__(
        self,
        sock: socket.socket,
        info: RelpConnectionInfo,
        timeouts: Timeouts,
        *,
        framing: str,
        window: int = WINDOW,
        txnr: int = 1,
        watch: IoWatch | None = None,
    ) -> None:
        self.info = info
        self.relp_info = info  # the same, with the RELP details typed
        self._sock = sock
        # Every wait (a full send buffer, a full window) also watches the worker's wake-up
        # descriptor, so a stop never waits for a network timeout.
        self._watch = watch or IoWatch()
        self._timeouts = timeouts
        self._framing = framing
        self._window = window
        self._txnr = txnr  # the last number used (the open)
        self._reader = FrameReader()
        self._pending: collections.OrderedDict[int, int] = collections.OrderedDict()
        self._unacknowledged = 0  # wire bytes of the frames in _pending
        self._written = 0  # wire bytes handed to send()
        self._lost: TransportError | None = None
        self.frames_acknowledged = 0
        self._progress_at = time.monotonic()

    # -- the Sender interface

    def send(self, wire: bytes | memoryview, lengths: Sequence[int]) -> None:
        if self._lost is not None:
            raise self._lost
        view = wire if isinstance(wire, memoryview) else memoryview(wire)
        messages = unframe(view, lengths, self._framing)
        out = bytearray()
        txnr = self._txnr
        pending = self._pending
        window = self._window
        for message, length in zip(messages, lengths, strict=True):
            if len(pending) >= window:
                if out:
                    self._write(out)
                    out.clear()
                # Wait until a quarter of the window is free: not one write per answer.
                while len(pending) > window - max(window // 4, 1):
                    self._pump(wait=self._timeouts.write)
            txnr = 1 if txnr >= MAX_TXNR else txnr + 1
            out += b"%d syslog %d " % (txnr, len(message))
            out += message
            out += b"\n"
            if not pending:
                self._progress_at = time.monotonic()
            pending[txnr] = length
            self._unacknowledged += length
            self._written += length
            self._txnr = txnr
            if len(out) >= 1 << 18:
                self._write(out)
                out.clear()
        if out:
            self._write(out)

    def unacknowledged_bytes(self) -> int:
        """Wire bytes whose frames have not been answered ``200`` yet (reads what arrived)."""
        self._pump(wait=0)
        return self._unacknowledged

    def acknowledged_bytes(self) -> int:
        """Wire bytes handed to ``send`` on this session whose frames were all answered."""
        return self._written - self._unacknowledged

    def written_bytes(self) -> int:
        """Wire bytes handed to ``send`` on this session whose frames were written (or were
        being written when it failed)."""
        return self._written

    def peer_closed(self) -> bool:
        """Reads the answers that arrived; a refusal, ``serverclose`` or EOF raises its
        explained ``TransportError`` (so that the worker's status says why)."""
        self._pump(wait=0)
        return False

    def close(self, *, timeout: float = 2.0) -> None:
        """``close``, then wait (bounded) for its answer and the server's end of the session,
        reading the answers to frames still outstanding on the way; then close the socket."""
        deadline = time.monotonic() + timeout
        sock = self._sock
        try:
            if self._lost is None:
                close_txnr = next_txnr(self._txnr)
                self._txnr = close_txnr
                self._write(encode(close_txnr, "close"))
                while time.monotonic() < deadline:
                    try:
                        if self._pump(
                            wait=max(deadline - time.monotonic(), 0.01), closing=close_txnr
                        ):
                            break
                    except TransportError:
                        break
            if hasattr(sock, "unwrap"):
                sock.settimeout(max(deadline - time.monotonic(), 0.01))
                sock = sock.unwrap()
            sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError, TransportError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with contextlib.suppress(OSError):
                self._sock.close()

    # -- reading the answers

    def _write(self, data: bytes | bytearray) -> None:
        try:
            self._send_all(data)
        except (OSError, ValueError) as exc:
            # The server may have said why before it closed: read that first.
            with contextlib.suppress(TransportError):
                self._pump(wait=0)
            if self._lost is not None:
                raise self._lost from exc
            raise self._fail(_lost_error(self.info.server, exc, self._timeouts.write)) from exc

    def _send_all(self, data: bytes | bytearray) -> None:
        """Write all of ``data``, waiting in the ``IoWatch`` while the socket's buffer is full;
        ``TimeoutError`` when no byte was taken for the write timeout, ``StopRequested`` when
        the worker gives up."""
        import ssl

        sock, watch = self._sock, self._watch
        view = memoryview(data)
        position = 0
        until = time.monotonic() + self._timeouts.write
        sock.settimeout(0)
        try:
            while position < len(view):
                try:
                    position += sock.send(view[position : position + (1 << 16)])
                except (BlockingIOError, ssl.SSLWantWriteError):
                    watch.wait(sock, write=True, until=until, what="write")
                    continue
                except ssl.SSLWantReadError:
                    watch.wait(sock, write=False, until=until, what="write")
                    continue
                until = time.monotonic() + self._timeouts.write
                watch.done()
        finally:
            watch.done()
            with contextlib.suppress(OSError):
                sock.settimeout(self._timeouts.write)

    def _fail(self, error: TransportError) -> TransportError:
        self._lost = error
        return error

    def _pump(self, *, wait: float, closing: int | None = None) -> bool:
        """Read and handle the frames that arrived; with ``wait`` > 0, block up to that long
        for at least one. Returns True when the answer to ``closing`` (or the end) came."""
        if self._lost is not None:
            raise self._lost
        sock = self._sock
        deadline = time.monotonic() + wait
        got_any = False
        # Non-blocking for the whole pump: over TLS every answer may be its own record, so a
        # read per record is the floor; no timeout juggling or select around each of them.
        sock.settimeout(0)
        try:
            while True:
                data = self._recv()
                if data is None:
                    if got_any or wait <= 0:
                        self._check_progress()
                        return False
                    self._await_answers(deadline, wait)
                    continue
                if data == b"":
                    if closing is not None:
                        return True
                    raise self._fail(self._ended_error())
                for frame in self._frames(data):
                    got_any = True
                    if self._handle(frame, closing):
                        return True
        finally:
            if got_any and QUICKACK is not None:
                # Acknowledge the answers at once: the server's next answer waits for our ACK
                # (Nagle), and a delayed ACK would cost 40 ms per round trip.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            with contextlib.suppress(OSError):
                sock.settimeout(self._timeouts.write)

    def _await_answers(self, deadline: float, wait: float) -> None:
        """Nothing to read yet: wait for the socket until ``deadline``; silence until then is
        the error. A stop (the worker's wake-up) ends the wait: ``StopRequested``."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._fail(self._silence_error(wait))
        try:
            self._watch.wait(self._sock, write=False, until=deadline, what="write")
        except TimeoutError:
            pass  # the silence is reported on the next turn
        finally:
            self._watch.done()

    def _frames(self, data: bytes) -> list[Frame]:
        try:
            return self._reader.feed(data)
        except ProtocolViolation as exc:
            raise self._fail(violation_error(self.info.server, exc)) from exc

    def _ended_error(self) -> TransportError:
        return TransportError(
            f"{self.info.server} closed the RELP session without serverclose "
            f"({len(self._pending)} frames unanswered)",
            step="send",
            cause="connection-lost",
            fix="look at the RELP server's log; the forwarder reconnects and "
            "sends the unanswered frames again",
        )

    def _recv(self) -> bytes | None:
        """What is there to read (b"" at the end), or None when nothing (whole) is there yet.
        The socket is non-blocking here."""
        try:
            return self._sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            if type(exc).__name__ in ("SSLWantReadError", "SSLWantWriteError"):
                return None
            raise self._fail(_lost_error(self.info.server, exc, 0)) from exc

    def _check_progress(self) -> None:
        """Frames outstanding and no answer for the write timeout: the server is stalled."""
        if not self._pending:
            self._progress_at = time.monotonic()
            return
        if time.monotonic() - self._progress_at > self._timeouts.write:
            raise self._fail(self._silence_error(self._timeouts.write))

    def _handle(self, frame: Frame, closing: int | None) -> bool:
        if frame.command == "serverclose":
            if closing is not None:
                return True
            raise self._fail(
                TransportError(
                    f"{self.info.server} ended the RELP session (serverclose) with "
                    f"{len(self._pending)} frames unanswered",
                    step="send",
                    cause="relp-serverclose",
                    fix="the RELP server is shutting down or dropped this client; look at its "
                    "log. The forwarder reconnects and sends the unanswered frames again",
                )
            )
        if frame.command != "rsp":
            raise self._fail(
                violation_error(
                    self.info.server, ProtocolViolation(f"unexpected command {frame.command!r}")
                )
            )
        if frame.txnr == closing:
            return True
        length = self._pending.get(frame.txnr)
        if length is None:
            raise self._fail(
                violation_error(
                    self.info.server,
                    ProtocolViolation(f"an answer to transaction {frame.txnr}, which is not open"),
                )
            )
        code, text = 200, "OK"
        if frame.data != b"200 OK":
            try:
                code, text, _ = parse_response(frame.data)
            except ProtocolViolation as exc:
                raise self._fail(violation_error(self.info.server, exc)) from exc
        if code != 200:
            raise self._fail(
                TransportError(
                    f"{self.info.server} refused a message: RELP answer {code} {text}".rstrip()
                    + f" (transaction {frame.txnr})",
                    step="send",
                    cause="relp-refused",
                    fix="look at the RELP server's log for why it refused (a message too large "
                    "for its maxDataSize, a full queue, ...); the forwarder reconnects and "
                    "sends the unanswered frames again",
                )
            )
        del self._pending[frame.txnr]
        self._unacknowledged -= length
        self._progress_at = time.monotonic()
        self.frames_acknowledged += 1
        return False

    def _silence_error(self, wait: float) -> TransportError:
        return TransportError(
            f"{self.info.server} answered none of {len(self._pending)} RELP frames within "
            f"{wait:g} s",
            step="send",
            cause="relp-no-answer",
            fix="the RELP server is stalled or overloaded (look at its log and queue); the "
            "forwarder reconnects and sends the unanswered frames again",
        )


def _lost_error(label: str, exc: BaseException, timeout: float) -> TransportError:
    if isinstance(exc, TimeoutError):
        return write_stalled_error(
            label, timeout, server="the RELP server", again="sends the unanswered frames again"
        )
    return TransportError(
        f"{label} closed the RELP connection ({exc})",
        step="send",
        cause="connection-lost",
        fix="look at the RELP server's log; the forwarder reconnects and sends the unanswered "
        "frames again",
    )
