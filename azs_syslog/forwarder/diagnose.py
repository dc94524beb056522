"""``test-syslog-server``: connect with the current configuration and report every step.

Steps, in order: ``configuration``, ``dns``, ``connect``, ``tls`` (handshake: version, cipher,
the server's chain, whether the server asked for a client certificate), ``name`` (the server
name check), ``relp`` (with --use-relp: the RELP ``open`` handshake and the server's offers),
and optionally ``send`` (one test event). The first failed step ends the run; the
steps after it are reported as not run. Each failure carries the explanation and the fix of
its ``TransportError``.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from azs_syslog.errors import AzsSyslogError, TransportError
from azs_syslog.transport import (
    ConnectionInfo,
    Sender,
    StreamSender,
    Timeouts,
    format_address,
    open_stream,
    resolve,
    server_label,
    tls_handshake,
    tls_sender,
)
from azs_syslog.transport.relp import RelpSender

if TYPE_CHECKING:
    from azs_syslog.config import Config, ServerSettings

STEPS = ("configuration", "dns", "connect", "tls", "name", "relp", "send")
DIAGNOSE_TIMEOUTS = Timeouts(connect=5.0, handshake=5.0, write=5.0)
ACK_WAIT = 5.0
TEST_EVENT_NAME = "Test event from azs-syslog test-syslog-server"


@dataclass
class Step:
    name: str
    status: str  # "ok" | "failed" | "skipped" | "not run"
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    cause: str | None = None
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass
class Diagnosis:
    server: str | None
    transport: str | None
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(step.failed for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "server": self.server,
            "transport": self.transport,
            "steps": [asdict(step) for step in self.steps],
        }


def _failed(name: str, error: AzsSyslogError) -> Step:
    cause = error.cause if isinstance(error, TransportError) else "error"
    return Step(name, "failed", error.message, cause=cause, fix=error.fix)


def _verification_mode(server: ServerSettings) -> str:
    if server.transport != "tls":
        return "none (not encrypted)"
    if server.skip_certificate_check:
        return "none: --skip-certificate-check (encrypted, nothing verified; not for production)"
    if server.skip_cn_check:
        return "chain only: --skip-cn-check (the name is not checked)"
    return "chain and name"


def diagnose(
    config: Config,
    *,
    send_test_event: bool = False,
    timeouts: Timeouts = DIAGNOSE_TIMEOUTS,
) -> Diagnosis:
    """Run every step against ``config``; never raises for a network or TLS failure."""
    server = config.server
    if server is None:
        return Diagnosis(
            None,
            None,
            [
                Step(
                    "configuration",
                    "failed",
                    "no syslog server is configured",
                    cause="not-configured",
                    fix="azs-syslog set-syslog-server --server-name NAME --server-port PORT",
                )
            ],
        )
    result = Diagnosis(server_label(server), server.transport)
    steps = result.steps
    certificate = config.client.certificate
    details: dict[str, Any] = {
        "server_name": server.server_name,
        "server_port": server.server_port,
        "transport": server.transport,
        "verification": _verification_mode(server),
        "trusted_ca": server.trusted_ca,
        "message_format": server.message_format,
        "framing": "one message per datagram" if server.transport == "udp" else server.framing,
        "client_certificate": (
            {"subject": certificate.subject, "not_after": certificate.not_after}
            if certificate
            else None
        ),
    }
    details["relp"] = server.use_relp
    summary = f"{server_label(server)} over {'RELP/' if server.use_relp else ''}"
    summary += server.transport.upper()
    if server.transport == "tls":
        summary += f"; verification: {_verification_mode(server)}"
        summary += (
            f"; client certificate {certificate.subject}"
            if certificate
            else "; no client certificate"
        )
    steps.append(Step("configuration", "ok", summary, details))

    sender: Sender | None = None
    try:
        sender = _connect_steps(result, server, config, timeouts)
        if sender is not None and server.use_relp:
            sender = _relp_step(result, sender, server, timeouts)
        if sender is None:
            return _finish(result, relp=server.use_relp)
        if send_test_event:
            steps.append(_send_step(sender, config))
        else:
            steps.append(Step("send", "skipped", "no test event sent (use --send-test-event)"))
    finally:
        if sender is not None:
            sender.close()
    return _finish(result, relp=server.use_relp)


def _relp_step(
    result: Diagnosis, stream: Sender, server: ServerSettings, timeouts: Timeouts
) -> Sender | None:
    """Open a RELP session on the connection the earlier steps made (and verified)."""
    from azs_syslog.transport import StreamSender, relp

    assert isinstance(stream, StreamSender), "RELP runs over a TCP or TLS stream"
    try:
        sender = relp.start_session(
            stream.sock,
            stream.info,
            timeouts,
            framing=server.framing,
            server_name=server.server_name,
        )
    except TransportError as exc:
        stream.close(timeout=0.5)
        result.steps.append(_failed("relp", exc))
        return None
    offers = sender.relp_info.relp_offers
    result.steps.append(
        Step(
            "relp",
            "ok",
            f"RELP session open; the server offers {relp.describe_offers(offers)}",
            {"offers": dict(offers)},
        )
    )
    return sender


def _finish(result: Diagnosis, *, relp: bool = False) -> Diagnosis:
    """Name every step that did not run, in the order of ``STEPS``."""
    done = {step.name for step in result.steps}
    plain = result.transport in ("udp", "tcp")
    for name in STEPS:
        if name in done:
            continue
        if plain and name in ("tls", "name") and result.ok:
            result.steps.append(Step(name, "skipped", "no TLS: not encrypted, nothing verified"))
        elif name == "relp" and not relp:
            continue  # only a RELP configuration has this step
        else:
            result.steps.append(Step(name, "not run", "not run: an earlier step failed"))
    order = {name: index for index, name in enumerate(STEPS)}
    result.steps.sort(key=lambda step: order[step.name])
    return result


def _connect_steps(
    result: Diagnosis, server: ServerSettings, config: Config, timeouts: Timeouts
) -> Sender | None:
    steps = result.steps
    try:
        addresses = resolve(server)
    except TransportError as exc:
        steps.append(_failed("dns", exc))
        return None
    shown = [format_address(a).rsplit(":", 1)[0].strip("[]") for _, a in addresses]
    steps.append(
        Step("dns", "ok", f"{server.server_name} -> {', '.join(shown)}", {"addresses": shown})
    )
    label = server_label(server)
    if server.transport == "udp":
        from azs_syslog.transport import connect

        try:
            sender = connect(server, config.client, timeouts=timeouts)
        except TransportError as exc:
            steps.append(_failed("connect", exc))
            return None
        steps.append(
            Step(
                "connect",
                "ok",
                f"UDP socket to {sender.info.peer_address} (UDP has no connection: nothing "
                "confirms that a server listens)",
                {"peer_address": sender.info.peer_address},
            )
        )
        return sender
    started = time.monotonic()
    try:
        raw = open_stream(server, addresses, timeouts.connect)
    except TransportError as exc:
        steps.append(_failed("connect", exc))
        return None
    peer = format_address(raw.getpeername())
    elapsed = (time.monotonic() - started) * 1000
    steps.append(
        Step(
            "connect",
            "ok",
            f"TCP connection to {peer} in {elapsed:.0f} ms",
            {"peer_address": peer, "milliseconds": round(elapsed, 1)},
        )
    )
    if server.transport == "tcp":
        return StreamSender(raw, ConnectionInfo("tcp", label, peer), timeouts)
    return _tls_steps(result, raw, server, config, timeouts, label, peer)


def _tls_steps(
    result: Diagnosis,
    raw: socket.socket,
    server: ServerSettings,
    config: Config,
    timeouts: Timeouts,
    label: str,
    peer: str,
) -> Sender | None:
    from azs_syslog.transport import tls

    steps = result.steps
    try:
        session = tls_handshake(raw, server, config.client, timeouts, check_name=False)
    except TransportError as exc:
        steps.append(
            _failed("name" if exc.step == "verify" and exc.cause == "name-mismatch" else "tls", exc)
        )
        return None
    sock = session.sock
    record = session.context.record
    chain = [
        _certificate_details(der)
        for der in tls.certificates_from_message(record.server_certificate_message)
    ]
    if not chain and session.peer_certificate:
        chain = [_certificate_details(session.peer_certificate)]
    cipher = sock.cipher()
    details: dict[str, Any] = {
        "version": sock.version(),
        "cipher": cipher[0] if cipher else None,
        "server_chain": chain,
        "client_certificate_requested": record.certificate_requested,
        "client_certificate_sent": record.client_certificate_sent,
    }
    requested = "requested" if record.certificate_requested else "not requested"
    if record.certificate_requested:
        requested += ", sent" if record.client_certificate_sent else ", none sent"
    leaf = chain[0] if chain else None
    summary = f"{details['version']}, {details['cipher']}; client certificate {requested}"
    if leaf:
        summary += f"; server certificate {leaf['subject']} (expires {leaf['not_after']})"
    steps.append(Step("tls", "ok", summary, details))

    names = (
        tls.certificate_names(tls.load_der(session.peer_certificate))
        if session.peer_certificate
        else None
    )
    presented = names.presented() if names else []
    if server.skip_certificate_check or server.skip_cn_check:
        flag = "--skip-certificate-check" if server.skip_certificate_check else "--skip-cn-check"
        steps.append(
            Step(
                "name",
                "skipped",
                f"not checked ({flag}); the certificate holds {', '.join(presented) or 'no names'}",
                {"names": presented},
            )
        )
    elif names is not None and tls.name_matches(server.server_name, names):
        steps.append(
            Step(
                "name",
                "ok",
                f"{server.server_name} matches the certificate ({', '.join(presented)})",
                {"names": presented},
            )
        )
    else:
        error = tls.name_mismatch_error(server.server_name, names or tls.CertificateNames())
        step = _failed("name", error)
        step.details = {"names": presented}
        steps.append(step)
        sock.close()
        return None
    return tls_sender(session, server, label, peer, timeouts)


def _certificate_details(der: bytes) -> dict[str, Any]:
    from azs_syslog.transport import tls

    summary = tls.summarize(der)
    return {
        "subject": summary.subject,
        "issuer": summary.issuer,
        "not_before": summary.not_before,
        "not_after": summary.not_after,
        "expired": summary.expired,
        "names": summary.names.presented(),
    }


def _send_step(sender: Sender, config: Config) -> Step:
    wire = build_test_message(config)
    try:
        sender.send(wire, [len(wire)])
    except TransportError as exc:
        return _failed("send", exc)
    if sender.info.transport == "udp":
        return Step(
            "send",
            "ok",
            "test event sent (UDP: nothing acknowledges it; look for it at the server)",
            {"bytes": len(wire)},
        )
    relp = isinstance(sender, RelpSender)
    deadline = time.monotonic() + ACK_WAIT
    try:
        while sender.unacknowledged_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        unanswered = sender.unacknowledged_bytes()
    except TransportError as exc:
        return _failed("send", exc)
    status, summary, cause, fix = _SEND_OUTCOMES[relp, bool(unanswered)]
    return Step("send", status, summary, {"bytes": len(wire)}, cause=cause, fix=fix)


# (RELP, not acknowledged) -> the send step's status, summary, cause and fix.
_SEND_OUTCOMES: dict[tuple[bool, bool], tuple[str, str, str | None, str | None]] = {
    (True, True): (
        "failed",
        f"the RELP server did not answer the test event within {ACK_WAIT:g} s",
        "relp-no-answer",
        "the server accepts the session but does not process it; look at its log",
    ),
    (True, False): (
        "ok",
        "test event sent and answered 200 OK by the RELP server; look for it at the server",
        None,
        None,
    ),
    (False, True): (
        "failed",
        f"the server's TCP did not acknowledge the test event within {ACK_WAIT:g} s",
        "not-acknowledged",
        "the server accepts connections but does not read; look at its load and log",
    ),
    (False, False): (
        "ok",
        "test event sent and acknowledged by the server's TCP; look for it at the server",
        None,
        None,
    ),
}


def build_test_message(config: Config, *, now: dt.datetime | None = None) -> bytes:
    """One framed test event under the configuration's settings: an ``arm`` event, rendered
    by ``azs_syslog.encode.render`` like every message (so that the real encoder is
    exercised)."""
    from azs_syslog.encode.render import Renderer, RenderSettings

    now = now or dt.datetime.now(dt.UTC)
    renderer = Renderer(RenderSettings.from_config(config))
    rendered = renderer.render_object(
        {
            "type": "arm",
            "AzsOperationName": "azs-syslog/test-syslog-server",
            "AzsEventName": TEST_EVENT_NAME,
            "AzsDescription": "connectivity test; no action needed",
        },
        int(now.timestamp() * 1000),
    )
    assert rendered is not None  # an arm event has no Windows level: never filtered out
    return rendered
