"""The audit trail of configuration changes [project]: every ``set-*`` that changes something
queues a ``Microsoft-AzureStack-Forwarder: ConfigurationChanged`` event before the new
configuration is written (docs/operations.md, "The audit trail").

How it reaches both servers without breaking the generation rules (docs/architecture.md):

* one copy is rendered for the configuration in force *before* the change (its generation,
  its settings) and is *pinned* to that generation: the forwarder sends it only while that
  configuration is in force, never renders it again and never sends it elsewhere. When the
  forwarder notices the change it sends the pinned copies of its configuration first, then
  drains and switches; so the server being left hears of the change before anything accepted
  after it is sent anywhere. A pinned copy the forwarder can no longer send (it was not
  connected, or not running, when the change came) is deleted and counted as
  ``audit_undelivered``;
* when the change configures a server (another one, or the same one with other settings), a
  second copy is rendered for the new configuration (the new generation) and pinned to it.

With no server before nor after (``set-syslog-client`` on an unconfigured forwarder) there is
no SIEM to tell, and nothing is queued.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from azs_syslog import config as cfg
from azs_syslog.config import Config, ServerSettings
from azs_syslog.events import forwarder
from azs_syslog.events.common import sanitize_host

REMOVE_WAIT = 10.0  # how long `set-syslog-server --remove` waits for the event to be sent


@dataclass
class Recorded:
    """What one command recorded: the queued copies (batch ids) and for which servers."""

    command: str
    batch_ids: list[int] = field(default_factory=list)
    servers: list[str] = field(default_factory=list)
    changed: bool = False


def current_user() -> str:
    """The operating-system user running the command (with the one ``sudo`` ran it for)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.geteuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{user} (sudo by {sudo})" if sudo and sudo != user else user


def _server_text(server: ServerSettings | None) -> str:
    """The server as audit copies are pinned to it (``worker.server_label``'s form)."""
    if server is None:
        return "none"
    return f"{server.server_name}:{server.server_port} {server.transport}"


def _trusted_ca_text(path: str | None) -> str | None:
    """The stored CA bundle by the thumbprints of its certificates (never its path's bytes)."""
    if path is None:
        return None
    try:
        from azs_syslog.config import certs

        with open(path, "rb") as handle:
            found = certs.load_certificates(handle.read(), path)
        return "thumbprint " + ",".join(certs.thumbprint(cert) for cert in found)
    except Exception:  # a description, best effort: the file was checked before
        return "a CA bundle"


def settings_view(config: Config, ca_text: str | None = None) -> dict[str, str]:
    """The settings an audit event compares, as text: the server's, the client certificate
    by thumbprint, the OutputSeverity. Never a password or a key (neither is in a Config)."""
    server = config.server
    view: dict[str, str] = {"Server": _server_text(server)}
    if server is not None:
        for name, value in cfg.server_to_dict(server).items():
            if name == "TrustedCA":
                value = ca_text
            if value is None:
                continue
            view[name] = str(value).lower() if isinstance(value, bool) else str(value)
    cert = config.client.certificate
    if cert is not None:
        view["ClientCertificate"] = f"thumbprint {cert.thumbprint} ({cert.subject})"
    view["OutputSeverity"] = config.client.output_severity
    return view


def describe(
    old: Config, new: Config, old_ca: str | None, new_ca: str | None
) -> tuple[list[str], str, str]:
    """The names of the settings that changed, and the old and new values of those."""
    before = settings_view(old, old_ca)
    after = settings_view(new, new_ca)
    only = old.server or new.server
    if only is not None and (old.server is None or new.server is None):
        # Configured from nothing, or removed: the server's line says it; its properties
        # would only repeat it as "(none)".
        server_keys = set(cfg.server_to_dict(only))
        before = {k: v for k, v in before.items() if k not in server_keys}
        after = {k: v for k, v in after.items() if k not in server_keys}
    names = [
        name for name in dict.fromkeys([*before, *after]) if before.get(name) != after.get(name)
    ]

    def text(view: dict[str, str]) -> str:
        return "; ".join(f"{name}: {view.get(name, '(none)')}" for name in names)

    return names, text(before), text(after)


def _render_copy(config: Config, record: dict[str, Any], now: int) -> tuple[object, str]:
    from azs_syslog.encode.render import Renderer, RenderSettings
    from azs_syslog.queue import NewBatch, encode_raw, lengths_to_bytes

    settings = RenderSettings.from_config(config)
    message = Renderer(settings).render_event(forwarder.configuration_changed(**record), now)
    assert message is not None  # the forwarder's events have no Windows level to filter
    return NewBatch(
        count=1,
        created_ms=now,
        render_key=settings.key,
        wire=message,
        lengths=lengths_to_bytes([len(message)]),
        raw=encode_raw([now], [json.dumps(record, sort_keys=True).encode()]),
        generation=config.generation,
        level=config.security_level,
    ), _server_text(config.server)


def make_recorder(
    recorded: Recorded, *, trusted_ca_pem: bytes | None = None
) -> Callable[[Config, Config], None]:
    """The ``config.change_recorder`` of one command: queues the audit copies (durably, in one
    transaction) for the change from ``old`` to ``new``."""

    def record(old: Config, new: Config) -> None:
        from azs_syslog.queue import Queue, now_ms

        recorded.changed = True
        if old.server is None and new.server is None:
            return  # no SIEM to tell
        old_ca = _trusted_ca_text(old.server.trusted_ca if old.server else None)
        new_ca = old_ca
        if new.server is not None and new.server.trusted_ca is not None:
            if trusted_ca_pem is not None:
                from azs_syslog.config import certs

                found = certs.load_certificates(trusted_ca_pem, "the trusted CA")
                new_ca = "thumbprint " + ",".join(certs.thumbprint(c) for c in found)
        elif new.server is None or new.server.trusted_ca is None:
            new_ca = None
        names, before, after = describe(old, new, old_ca, new_ca)
        user = current_user()
        host = sanitize_host(socket.gethostname())
        removed = old.server is not None and new.server is None
        if removed:
            summary = f"forwarding to {_server_text(old.server)} removed by {user}"
        elif old.server != new.server and old.server is not None and new.server is not None:
            summary = (
                f"forwarding changed from {_server_text(old.server)} to "
                f"{_server_text(new.server)} by {user}"
            )
        else:
            summary = f"{', '.join(names) or 'configuration'} changed by {user}"
        now = now_ms()
        # The event's arguments: stored as the batch's raw line, from which the forwarder
        # renders it again when the settings of the same server changed before it was sent.
        record: dict[str, Any] = {
            "command": recorded.command,
            "user": user,
            "host": host,
            "message": summary,
            "before": before,
            "after": after,
            "changed": ",".join(names),
            "generation": new.generation,
            "time_ms": now,
            "removed": removed,
        }
        copies = []
        if old.server is not None:
            copies.append(_render_copy(old, record, now))
            recorded.servers.append(_server_text(old.server))
        if new.server is not None and _server_text(new.server) != _server_text(old.server):
            copies.append(_render_copy(new, record, now))
            recorded.servers.append(_server_text(new.server))
        with Queue() as queue:
            recorded.batch_ids = queue.append_pinned(copies)  # type: ignore[arg-type]

    return record


@contextmanager
def recording(command: str, *, trusted_ca_pem: bytes | None = None) -> Iterator[Recorded]:
    """Record the configuration changes made inside (see the module doc)."""
    recorded = Recorded(command)
    token = cfg.change_recorder.set(make_recorder(recorded, trusted_ca_pem=trusted_ca_pem))
    try:
        yield recorded
    except BaseException:
        # The change was recorded but not written (the configuration file could not be):
        # take the record back, unless the forwarder has sent it already.
        if recorded.batch_ids:
            from azs_syslog.errors import AzsSyslogError
            from azs_syslog.queue import Queue

            with suppress(AzsSyslogError), Queue() as queue:
                queue.discard(recorded.batch_ids)
        raise
    finally:
        cfg.change_recorder.reset(token)


@dataclass(frozen=True)
class Delivery:
    sent: bool
    reason: str | None = None  # why not, in the operator's words


def wait_for_delivery(batch_id: int, server: str, timeout: float = REMOVE_WAIT) -> Delivery:
    """Wait (bounded) until the forwarder has sent the audit copy ``batch_id`` meant for
    ``server`` (it left the queue as sent), or tell why it could not be."""
    from azs_syslog.forwarder import status as st
    from azs_syslog.queue import Queue

    with Queue() as queue:
        undelivered = queue.counters().get("audit_undelivered", 0)
        deadline = time.monotonic() + timeout
        while True:
            if not queue.has_batch(batch_id):
                if queue.counters().get("audit_undelivered", 0) > undelivered:
                    return Delivery(False, _not_sent(server))
                return Delivery(True)
            if st.worker_lock_held() is not True:
                return Delivery(
                    False,
                    f"the forwarder is not running, so {server} was not told of this change "
                    "(forwarding to it has stopped; record the change there by hand)",
                )
            if time.monotonic() >= deadline:
                return Delivery(
                    False,
                    f"the forwarder did not send it to {server} within {timeout:.0f} s; "
                    "see `azs-syslog forwarder status` for why",
                )
            time.sleep(0.05)


def _not_sent(server: str) -> str:
    from azs_syslog.forwarder import status as st

    reason = ""
    data = None
    try:
        data = st.read_status()
    except Exception:  # only a detail of the message
        data = None
    error = (data or {}).get("last_error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        reason = f" (last error: {error['message']})"
    return (
        f"the forwarder was not connected to {server}{reason}, so {server} was not told of "
        "this change; forwarding to it has stopped"
    )
