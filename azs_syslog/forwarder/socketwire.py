"""The worker's socket input: started by the loop with a renderer of its own, and a refresh that
renders with the configuration the file holds at each commit."""

from __future__ import annotations

from collections.abc import Callable

from azs_syslog import paths
from azs_syslog.config import Config
from azs_syslog.encode.pipeline import Rendering
from azs_syslog.errors import ConfigError
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.common import ConfigWatcher
from azs_syslog.inputs.socket_input import SocketInput


class SocketWiring(WorkerBase):
    def _start_socket_input(self) -> None:
        """Listen on the socket: after the first step has loaded the configuration, with a
        renderer of the input's own (a Renderer is used by one thread only)."""
        self.socket_input = SocketInput(
            self.options.socket_path or paths.socket_file(),
            queue_path=self.queue.path,
            limits=self.options.limits,
            log=self.log,
        )
        self.step(self.clock())  # load the configuration first
        self.socket_input.rendering = self.make_rendering(self.config or Config())
        self.socket_input.refresh = self._socket_refresh()
        self.socket_input.start()

    def _socket_refresh(self) -> Callable[[Rendering | None], Rendering | None] | None:
        """For the socket input: before each commit, look at the configuration file (one
        stat) and render with the configuration it holds now, so that a line accepted right
        after a ``set-*`` is rendered for, and stamped with, the new generation. A source
        other than the file (tests) gives None: the input keeps what the worker gives it."""
        source = self.config_source
        if not isinstance(source, ConfigWatcher):
            return None
        watcher = ConfigWatcher(source.path)  # its own: the input runs in another thread
        make_rendering = self.make_rendering

        def refresh(current: Rendering | None) -> Rendering | None:
            try:
                config = watcher()
            except ConfigError:
                return current  # invalid: the worker reports it and keeps the last good one
            if current is not None and current.generation == config.generation:
                return current
            return make_rendering(config)

        return refresh
