"""Following the configuration: re-read it (a change of settings is applied at once when not
connected, else after a drain; a new generation of the same settings is adopted without a
reconnection), and what applying one resets."""

from __future__ import annotations

from dataclasses import replace

from azs_syslog.config import Config
from azs_syslog.encode.pipeline import Rendering
from azs_syslog.errors import ConfigError
from azs_syslog.forwarder import expiry as ex
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.common import server_label


class Reconfiguring(WorkerBase):
    def _check_config(self) -> None:
        try:
            config = self.config_source()
            # Equality ignores the generation: a new generation of the same settings is
            # adopted at once (_adopt_generation), without a reconnection.
            rendering = self.make_rendering(config) if config != self.config else None
        except ConfigError as exc:
            if self.config_problem != str(exc):
                self.log(f"configuration problem: {exc}; running on the last good configuration")
            self.config_problem = str(exc)
            if self.config is None:  # nothing good yet: run unconfigured, keep queueing
                self._apply(Config(), self.make_rendering(Config()))
            return
        if self.config_problem is not None:
            self.log("the configuration is valid again")
        self.config_problem = None
        if rendering is None:  # unchanged (or changed back while draining)
            self.pending = None
            self._adopt_generation(config)
            return
        if self.config is None or self.sender is None:
            self._apply(config, rendering)
            return
        # Connected: drain what is in flight, then switch (see _deliver).
        self.pending = (config, rendering)

    def _adopt_generation(self, config: Config) -> None:
        """The file holds the settings we run with under another generation: take it."""
        if self.config is None or self.rendering is None:
            return
        if config.generation == self.config.generation:
            return
        self.config = config
        self.rendering = replace(self.rendering, generation=config.generation)
        self.generation_wait = None
        socket_input = self.socket_input
        if socket_input is not None and socket_input.rendering is not None:
            socket_input.rendering = replace(socket_input.rendering, generation=config.generation)

    def _apply(self, config: Config, rendering: Rendering) -> None:
        error = self.last_error
        if error is not None and error.server not in (None, server_label(config.server)):
            self.last_error = None  # it concerned a server no longer configured
        self._failover_for(config)
        self.config = config
        self.rendering = rendering
        self.pending = None
        self.generation_wait = None
        self.next_held_check = 0.0  # what is held depends on the level: look again now
        self.backoff = 0.0
        self.next_attempt = 0.0
        self._check_client_certificate()
        if self._expiry_server != server_label(config.server):
            for role in (ex.SERVER, ex.SERVER_CHAIN):
                self.expiries.pop(role, None)  # they described a server no longer configured
        server = config.server
        if server is None:
            self.state = st.NOT_CONFIGURED
            self.log("no syslog server configured: events are queued, not sent")
        else:
            self.log(
                f"forwarding to {server.server_name}:{server.server_port} over "
                + ("RELP/" if server.use_relp else "")
                + server.transport
            )
        if self.socket_input is not None:
            # Its own renderer: a Renderer keeps caches and is used by one thread only.
            self.socket_input.rendering = self.make_rendering(config)
        self._discard_stale_pinned()
