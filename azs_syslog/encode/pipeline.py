"""What the worker and its inputs share, below both of them (so neither imports the other).

``Rendering`` is the renderer a configuration gives, with the key of its settings: the worker
renders batches with one, the socket input renders accepted lines with its own.
``RUNTIME_DIR_MODE`` is the mode of the runtime directory that holds the pid file and the
input socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azs_syslog.encode.render import Renderer, RenderSettings

# The socket is 0660 for producers in the service's group; its directory lets that group in.
RUNTIME_DIR_MODE = 0o750


@dataclass(frozen=True)
class Rendering:
    """The renderer for a configuration, and the key of its settings; with the configuration's
    generation and security level, which every batch rendered with it records."""

    key: str
    settings: RenderSettings
    renderer: Renderer
    generation: int = 0
    level: int = 0
