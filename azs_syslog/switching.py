"""The interpreter's thread switch interval while threads of ours share the GIL.

While a helper thread runs (the queue's committing thread, the ``.evtx`` reading thread), the
interpreter hands the GIL over every 0.1 ms instead of every 5 ms (``sys.setswitchinterval``).
Such a thread does its work without the GIL (SQLite, zlib, the C reader of ``.evtx`` chunks)
and takes it back after each piece, and each time it waited up to a whole interval for the
rendering thread: the helper became the slower of the two. Measured (``send-event``, 100,000
JSON lines, three runs each): 48,000-50,600 events/s at 5 ms, 62,600-67,700 at 0.2 ms,
70,700-74,400 at 0.1 ms, the CPU time the same; an ``.evtx`` import about 8 % faster. 0.5 ms
and 1 ms gained nothing. The interval only matters while a thread waits for the GIL.
"""

from __future__ import annotations

import sys
import threading
from typing import Final

SWITCH_INTERVAL: Final = 0.0001
_lock = threading.Lock()
_running = 0  # helper threads running in this process
_previous_interval = 0.0


def fast_switching(on: bool) -> None:
    """Set the short interval while any helper runs (``on`` as one starts, not ``on`` as it
    ends); the previous one back after the last."""
    global _running, _previous_interval
    with _lock:
        if on:
            if _running == 0:
                _previous_interval = sys.getswitchinterval()
                sys.setswitchinterval(SWITCH_INTERVAL)
            _running += 1
        else:
            _running -= 1
            if _running == 0:
                sys.setswitchinterval(_previous_interval)
