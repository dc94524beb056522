"""Signals (as gunicorn's arbiter and huey's consumer do it): the handlers only set flags; the
loop acts on them. The loop is woken by ``signal.set_wakeup_fd`` on a non-blocking socket pair:
it sleeps in ``poll`` on it, and every blocking network call waits on it next to its own socket
(``transport.IoWatch``). A second SIGTERM or SIGINT forces the stop."""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from azs_syslog import transport
from azs_syslog.config import ClientSettings, ServerSettings
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.common import STOP_BUDGET, STOP_SEND_GRACE

if TYPE_CHECKING:
    from azs_syslog.transport import Sender


class Signals(WorkerBase):
    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self.stop_requested = True
        if self._signals > 1:
            self.forced = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested = True

    def request_stop(self, *, force: bool = False) -> None:
        """Ask the loop to stop (from any thread)."""
        self.stop_requested = True
        if force:
            self.forced = True
        self._wake()

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def _give_up_at(self) -> float | None:
        """By when (monotonic) the blocking network call under way must give up; None lets it
        run to its own timeout. Asked by the call itself (``transport.IoWatch``)."""
        if self.forced:
            return 0.0
        if not self.stop_requested:
            return None
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        if self._io == "send":
            return self._stop_at + STOP_SEND_GRACE
        if self._io == "close":
            return self._stop_at + STOP_BUDGET  # within its own 2 s, and within the budget
        return 0.0  # connecting: nothing worth finishing

    def _connect_watched(self, server: ServerSettings, client: ClientSettings) -> Sender:
        return transport.connect(server, client, watch=self.io_watch)

    def _sleep(self, seconds: float) -> None:
        """Sleep until the next iteration is due or a signal (or ``request_stop``) wakes us."""
        if self._wake_r is None:
            time.sleep(seconds)
            return
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if poller.poll(seconds * 1000):
            self.io_watch.clear_wakeups()

    def _install_signals(self) -> Callable[[], None]:
        """Install the handlers and the wake-up socket pair; returns what undoes it."""
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.io_watch.wake_fd = self._wake_r.fileno()
        previous_wakeup = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        previous = {
            sig: signal.signal(sig, handler)
            for sig, handler in (
                (signal.SIGTERM, self._on_stop_signal),
                (signal.SIGINT, self._on_stop_signal),
                (signal.SIGHUP, self._on_hup),
            )
        }

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            self.io_watch.wake_fd = None
            for end in (self._wake_r, self._wake_w):
                if end is not None:
                    end.close()
            self._wake_r = self._wake_w = None

        return restore
