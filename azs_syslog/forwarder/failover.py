"""Failover (docs/operations.md, "Failover"): which of the two configured servers events go
to, when to switch to the failover server, and the probes of the primary that bring them back."""

from __future__ import annotations

from azs_syslog import transport
from azs_syslog.config import Config, ServerSettings
from azs_syslog.errors import TransportError
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.common import FAILOVER, FAILOVER_PROBE, PRIMARY, FailoverState
from azs_syslog.forwarder.snapshot import Endpoint, FailoverStatus


class Failover(WorkerBase):
    def _failover_for(self, config: Config) -> None:
        """A configuration is applied: keep the failover state when it names the same two
        servers, else start over on the primary."""
        old = self.config.server if self.config is not None else None
        new = config.server

        def servers(s: ServerSettings | None) -> tuple[object, ...] | None:
            if s is None or not s.has_failover:
                return None
            return (s.server_name, s.server_port, s.failover_server_name, s.failover_server_port)

        if servers(old) is None or servers(old) != servers(new):
            self.failover = FailoverState(since_ms=self.now_ms())

    def _target(self, server: ServerSettings) -> ServerSettings:
        """The server events go to now: the primary, or the failover server."""
        if self.failover.active == FAILOVER and server.has_failover:
            return server.failover_settings()
        return server

    def _probe_interval(self, server: ServerSettings) -> float:
        return min(FAILOVER_PROBE, float(server.failover_after))

    def _primary_failing(self, now: float) -> None:
        """A connection to the primary failed: the clock of FailoverAfter runs from the first
        failure of a run of them."""
        server = self.config.server if self.config is not None else None
        state = self.failover
        if (
            server is not None
            and server.has_failover
            and state.active == PRIMARY
            and state.failing_since is None
        ):
            state.failing_since = now

    def _failover_in(self, now: float) -> float | None:
        """Seconds until connections to the primary have failed for FailoverAfter (0: now);
        None when no switch is coming."""
        server = self.config.server if self.config is not None else None
        state = self.failover
        if server is None or not server.has_failover or state.active != PRIMARY:
            return None
        if state.failing_since is None:
            return None
        return max(0.0, state.failing_since + server.failover_after - now)

    def _connect_failed(self, exc: TransportError, now: float) -> None:
        """After a failed connection: when connections to the primary have failed for
        FailoverAfter seconds, deliver to the failover server from now on."""
        server = self.config.server if self.config is not None else None
        state = self.failover
        if self._failover_in(now) != 0 or server is None or state.failing_since is None:
            return
        elapsed = now - state.failing_since
        self.failover = FailoverState(
            since_ms=self.now_ms(),
            active=FAILOVER,
            reason=f"no connection to the primary server {server.server_name}:"
            f"{server.server_port} for {elapsed:.0f} s ({exc.message})",
            next_probe=now + self._probe_interval(server),
        )
        self.backoff = 0.0
        self.next_attempt = now
        self.log(
            f"failing over to {server.failover_server_name}:{server.failover_server_port}: "
            f"{self.failover.reason}; the primary is probed every "
            f"{self._probe_interval(server):.0f} s"
        )
        self.write_status()

    def _probe_primary(self, server: ServerSettings, now: float) -> bool:
        """While on the failover server: connect to the primary (handshake included, nothing
        sent) and close. True when it answered: then the loop drains and goes back."""
        self.failover.next_probe = now + self._probe_interval(server)
        if self.stop_requested or self.pending is not None:
            return False
        assert self.config is not None
        self._io = "connect"
        try:
            probe = self.connect(server, self.config.client)
        except transport.StopRequested:
            return False
        except TransportError as exc:
            self.failover.last_probe_error = exc.message
            return False
        finally:
            self._io = None
        self._io = "close"
        try:
            probe.close(timeout=2.0)
        finally:
            self._io = None
        self.failover.returning = True
        self.log(
            f"the primary server {server.server_name}:{server.server_port} answers again: "
            "returning to it once what is in flight is confirmed"
        )
        return True

    def _fail_back(self) -> None:
        self.failover = FailoverState(
            reason="the primary server answered a probe again", since_ms=self.now_ms()
        )
        self.backoff = 0.0
        self.next_attempt = 0.0
        server = self.config.server if self.config is not None else None
        if server is not None:
            self.log(f"delivering to the primary server {server.server_name}:{server.server_port}")
        self.write_status()

    def _failover_status(self, server: ServerSettings | None) -> FailoverStatus | None:
        if server is None or not server.has_failover:
            return None
        state = self.failover
        target = self._target(server)
        now = self.clock()
        on_failover = state.active == FAILOVER
        return FailoverStatus(
            active=state.active,
            reason=state.reason,
            since_ms=state.since_ms,
            server=Endpoint(target.server_name, target.server_port),
            primary=Endpoint(server.server_name, server.server_port),
            failover=Endpoint(server.failover_server_name, server.failover_server_port),
            failover_after_s=server.failover_after,
            primary_failing_for_s=None
            if state.failing_since is None
            else max(0.0, now - state.failing_since),
            next_probe_in_s=max(0.0, state.next_probe - now) if on_failover else None,
            last_probe_error=state.last_probe_error if on_failover else None,
        )
