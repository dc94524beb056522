"""Connecting, step by step: ``resolve`` the name, ``open_stream`` a TCP connection, and
``tls_handshake`` over it (the server verified, chain and name). The steps are public so that
``test-syslog-server`` can report them one by one; ``connect()`` strings them together.

Every wait is in the caller's ``IoWatch``: a stop is noticed at once (``StopRequested``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azs_syslog.errors import TransportError
from azs_syslog.transport.base import (
    CLIENT_CERTIFICATE_VERDICT_WAIT,
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    Address,
    IoWatch,
    StopRequested,
    Timeouts,
    connected_peer,
    format_address,
    server_label,
)

if TYPE_CHECKING:
    import ssl

    from azs_syslog.config import ClientSettings, ServerSettings
    from azs_syslog.transport.tls import ClientContext


def _connect_socket(
    sock: socket.socket, sockaddr: tuple[Any, ...], timeout: float, watch: IoWatch
) -> None:
    """``sock.connect(sockaddr)`` with ``timeout``, waiting in ``watch``. Raises ``OSError``
    (``TimeoutError`` at the timeout) or ``StopRequested``."""
    sock.setblocking(False)
    try:
        code = sock.connect_ex(sockaddr)
        if code in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK, errno.EINTR):
            watch.wait(sock, write=True, until=time.monotonic() + timeout, what="connect")
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    finally:
        watch.done()
    if code:
        raise OSError(code, os.strerror(code))


# -- the steps ----------------------------------------------------------------------------------


def resolve(server: ServerSettings) -> list[Address]:
    """The addresses of the server, in the resolver's order (duplicates removed)."""
    kind = socket.SOCK_DGRAM if server.transport == "udp" else socket.SOCK_STREAM
    host = server.server_name.strip("[]")
    try:
        infos = socket.getaddrinfo(host, server.server_port, type=kind)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise TransportError(
            f"cannot resolve the server name {server.server_name!r}: {reason}",
            step="dns",
            cause="dns",
            fix="check the name (azs-syslog set-syslog-server --server-name ...) and this "
            "machine's DNS settings",
        ) from exc
    addresses: list[Address] = []
    for family, _, _, _, sockaddr in infos:
        entry = (int(family), tuple(sockaddr))
        if entry not in addresses:
            addresses.append(entry)
    return addresses


def open_stream(
    server: ServerSettings,
    addresses: Sequence[Address],
    timeout: float,
    *,
    watch: IoWatch | None = None,
) -> socket.socket:
    """A TCP connection to the first address that accepts, with keepalive on (the socket is
    returned with ``timeout`` set)."""
    watch = watch or IoWatch()
    failure: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            _connect_socket(sock, sockaddr, timeout, watch)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        except BaseException:
            sock.close()
            raise
        sock.settimeout(timeout)
        enable_keepalive(sock)
        return sock
    raise connect_error(server, addresses, failure, timeout)


def enable_keepalive(sock: socket.socket) -> None:
    """Notice a dead peer within about a minute of silence (30 s + 3 x 10 s)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def connect_error(
    server: ServerSettings,
    addresses: Sequence[Address],
    exc: OSError | None,
    timeout: float,
) -> TransportError:
    label = server_label(server)
    tried = ", ".join(format_address(a) for _, a in addresses) or "no address"
    check_port = (
        "check the port (azs-syslog set-syslog-server --server-port ...), that the syslog "
        "server is running, and that no firewall blocks it"
    )
    if isinstance(exc, ConnectionRefusedError):
        return TransportError(
            f"{label} refused the connection ({tried}): nothing listens on port "
            f"{server.server_port}",
            step="connect",
            cause="refused",
            fix=check_port,
        )
    if isinstance(exc, TimeoutError):
        return TransportError(
            f"no answer from {label} within {timeout:g} s ({tried})",
            step="connect",
            cause="timeout",
            fix="check the address and port; a firewall may be dropping the packets",
        )
    if exc is not None and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return TransportError(
            f"{label} is unreachable ({tried}): {exc.strerror}",
            step="connect",
            cause="unreachable",
            fix="check the address and this machine's routes",
        )
    reason = exc.strerror if exc is not None and exc.strerror else str(exc)
    return TransportError(
        f"cannot connect to {label} ({tried}): {reason}",
        step="connect",
        cause="connect-failed",
        fix=check_port,
    )


@dataclass
class TlsSession:
    """A finished handshake: the TLS socket, what it showed, the server's certificate (DER)."""

    sock: ssl.SSLSocket
    context: ClientContext
    peer_certificate: bytes | None


def tls_handshake(
    raw: socket.socket,
    server: ServerSettings,
    client: ClientSettings,
    timeouts: Timeouts,
    *,
    check_name: bool = True,
    watch: IoWatch | None = None,
) -> TlsSession:
    """Wrap ``raw`` in TLS, verify the server (chain and, unless skipped, name) and wait for a
    TLS 1.3 client-certificate verdict. On failure ``raw`` is closed and the error explained."""
    from azs_syslog.transport import tls

    watch = watch or IoWatch()

    try:
        context = tls.client_context(server, client)
    except TransportError:
        raw.close()
        raise
    peer_sockaddr = connected_peer(raw, server_label(server))
    family = raw.family

    def fetch_certificate() -> bytes | None:
        return tls.fetch_peer_certificate(
            peer_sockaddr, family, server.server_name, timeouts.handshake
        )

    def explained(exc: BaseException) -> TransportError:
        return tls.explain_handshake_error(
            exc,
            server_name=server.server_name,
            record=context.record,
            peer_certificate=fetch_certificate,
        )

    raw.setblocking(False)
    try:
        sock = context.context.wrap_socket(
            raw, server_hostname=tls.sni_name(server.server_name), do_handshake_on_connect=False
        )
    except (OSError, ValueError) as exc:
        raw.close()
        raise explained(exc) from exc
    try:
        _shake_hands(sock, time.monotonic() + timeouts.handshake, watch)
        sock.settimeout(timeouts.handshake)
    except StopRequested:
        sock.close()
        raise
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError):
            sock.close()
        raise explained(exc) from exc
    finally:
        watch.done()
    der = _verified_peer(sock, server, context, check_name=check_name)
    context.stop_recording()
    return TlsSession(sock, context, der)


def _shake_hands(sock: ssl.SSLSocket, until: float, watch: IoWatch) -> None:
    """The handshake on the non-blocking ``sock``, waiting in ``watch`` until ``until``."""
    import ssl

    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            watch.wait(sock, write=False, until=until, what="tls handshake")
        except ssl.SSLWantWriteError:
            watch.wait(sock, write=True, until=until, what="tls handshake")


def _verified_peer(
    sock: ssl.SSLSocket, server: ServerSettings, context: ClientContext, *, check_name: bool
) -> bytes | None:
    """After the handshake: the server's certificate (DER), its name checked unless skipped,
    and the TLS 1.3 verdict on our certificate awaited. On failure ``sock`` is closed and the
    error explained."""
    from azs_syslog.transport import tls

    der: bytes | None = None
    try:
        der = sock.getpeercert(binary_form=True)
        verify_name = check_name and not (server.skip_certificate_check or server.skip_cn_check)
        if verify_name and der is not None:
            tls.check_server_name(server.server_name, der)
        if context.record.certificate_requested and sock.version() == "TLSv1.3":
            _await_client_certificate_verdict(sock)
    except (OSError, ValueError, TransportError) as exc:
        with contextlib.suppress(OSError):
            sock.close()
        raise tls.explain_handshake_error(
            exc,
            server_name=server.server_name,
            record=context.record,
            peer_certificate=lambda: der,
        ) from exc
    return der


def _await_client_certificate_verdict(sock: ssl.SSLSocket) -> None:
    """Read briefly: a server that refuses our (missing) certificate sends its alert now."""
    import ssl

    sock.settimeout(CLIENT_CERTIFICATE_VERDICT_WAIT)
    try:
        data = sock.recv(1)
    except (TimeoutError, ssl.SSLWantReadError):
        return
    if data == b"":
        raise ConnectionResetError(errno.ECONNRESET, "the server closed the connection")
