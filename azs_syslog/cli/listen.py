"""``azs-syslog listen``: the lab receiver. Parse options, run ``receiver.Listener``, render."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import time
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from azs_syslog.cli.exit_codes import ExitCode
from azs_syslog.cli.output import error, json_lines, json_option, note

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from azs_syslog.lab.receiver import Counts, Listener, ReceivedMessage

_EXTENSIONS_SHOWN = 4
_VALUE_WIDTH = 40
_F = TypeVar("_F", bound=Callable[..., Any])


def _shown(name: str, default: object, help_text: str, **kwargs: Any) -> Callable[[_F], _F]:
    """An option whose default ``--help`` shows."""
    return click.option(name, default=default, show_default=True, help=help_text, **kwargs)


def _pem_file(name: str, help_text: str) -> Callable[[_F], _F]:
    """An option naming a PEM file that must exist."""
    return click.option(name, type=click.Path(exists=True, dir_okay=False), help=help_text)


@click.command(
    "listen",
    epilog="""\b
Examples:
  # plain TCP on 127.0.0.1:5514, one row per message (Ctrl-C to stop)
  azs-syslog listen --protocol tcp --port 5514
\b
  # UDP on IPv6 loopback, JSON lines for jq
  azs-syslog listen --protocol udp --bind ::1 --port 5514 --json | jq .cef.extensions
\b
  # TLS with mutual authentication, as configuration 1 of the source document
  azs-syslog listen --protocol tls --port 6514 --cert server.pem --key server-key.pem \\
      --require-client-cert --client-ca ca.pem
\b
  # in a script: stop after 3 messages or 30 seconds, whichever comes first
  azs-syslog listen --protocol tcp --port 5514 --count 3 --timeout 30 --json
""",
)
@_shown("--protocol", "tcp", "Transport to receive on.", type=click.Choice(["udp", "tcp", "tls"]))
@_shown(
    "--port",
    5514,
    "Port to listen on (0 picks a free one; it is shown at start).",
    type=click.IntRange(0, 65535),
)
@_shown(
    "--bind",
    "127.0.0.1",
    "Address to listen on (::1 for IPv6). Anything beyond loopback is your choice to make.",
)
@_pem_file("--cert", "Server certificate, PEM, with its chain (tls).")
@_pem_file("--key", "Server private key, PEM, unencrypted (tls).")
@click.option(
    "--require-client-cert",
    is_flag=True,
    help="Mutual TLS: refuse clients without a certificate issued by --client-ca.",
)
@_pem_file("--client-ca", "CA bundle, PEM, that client certificates must chain to.")
@json_option
@click.option(
    "--count", type=click.IntRange(min=1), help="Stop after this many messages (valid or not)."
)
@click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds."
)
@_shown(
    "--max-message-size",
    64 * 1024,
    "Larger messages are flagged 'oversize' and discarded.",
    type=click.IntRange(64, 16 * 1024 * 1024),
)
def listen(
    protocol: str,
    port: int,
    bind: str,
    cert: str | None,
    key: str | None,
    require_client_cert: bool,
    client_ca: str | None,
    as_json: bool,
    count: int | None,
    timeout: float | None,
    max_message_size: int,
) -> None:
    """Lab receiver: show and check the syslog/CEF messages it receives.

    A tool for labs and troubleshooting, not a SIEM: nothing is stored. Each message is
    checked (framing, syslog header, CEF header, extension escapes) and shown as one row, or
    as one JSON object per line with --json. Malformed messages are flagged with the reason
    and counted; a summary goes to stderr on exit. TCP and TLS detect octet-counting or LF
    framing per connection.
    """
    _check_usage(protocol, cert, key, require_client_cert, client_ca)
    from azs_syslog.lab.receiver import Listener, server_ssl_context

    ssl_context = None
    if protocol == "tls":
        assert cert is not None and key is not None
        ssl_context = server_ssl_context(cert, key, client_ca if require_client_cert else None)
    connection_errors: queue.SimpleQueue[str] = queue.SimpleQueue()
    listener = Listener(
        protocol,
        bind,
        port,
        ssl_context=ssl_context,
        max_message_size=max_message_size,
        on_connection_error=connection_errors.put,
    ).start()
    stop = _StopFlag()  # before the start line, which tells a script it may signal us
    started = time.monotonic()
    if as_json:
        json_lines()  # one object per message as it arrives; a failure is the last line
    output = _Output(_JsonRenderer() if as_json else _RowRenderer(), count)
    try:
        mode = " (client certificate required)" if require_client_cert else ""
        note(
            f"listening on {protocol} {listener.address}{mode}; lab tool, nothing is stored; "
            "Ctrl-C to stop"
        )
        _receive(listener, output, stop, connection_errors, timeout, started)
    finally:
        listener.stop()
        # Show what was received before the stop, as far as --count allows.
        while output.wants_more:
            try:
                output.show(listener.get(timeout=0))
            except queue.Empty:
                break
        if output.reader_gone:
            _discard_stdout()
        stop.restore()
        _note_connection_errors(connection_errors)
        _print_summary(listener.counts, time.monotonic() - started, output.shown)
    if output.wants_more and count is not None and not stop.requested:
        error(f"timed out after {timeout:g} s with {output.shown} of {count} messages")
        click.get_current_context().exit(ExitCode.FAILED)


class _Output:
    """Shows messages with ``render`` until ``count`` are shown or stdout's reader has gone."""

    def __init__(self, render: Callable[[ReceivedMessage], None], count: int | None) -> None:
        self.render = render
        self.count = count
        self.shown = 0
        self.reader_gone = False  # stdout is a pipe whose reader has exited (| head)

    @property
    def wants_more(self) -> bool:
        return not self.reader_gone and (self.count is None or self.shown < self.count)

    def show(self, message: ReceivedMessage) -> None:
        try:
            self.render(message)
        except BrokenPipeError:
            self.reader_gone = True
            return
        self.shown += 1


def _receive(
    listener: Listener,
    output: _Output,
    stop: _StopFlag,
    connection_errors: queue.SimpleQueue[str],
    timeout: float | None,
    started: float,
) -> None:
    """Show messages as they arrive until a signal, ``--count`` or ``--timeout``."""
    while not stop.requested and output.wants_more:
        _note_connection_errors(connection_errors)
        wait = 0.2
        if timeout is not None:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                break
            wait = min(wait, left)
        try:
            message = listener.get(timeout=wait)
        except queue.Empty:
            continue
        output.show(message)


def _note_connection_errors(connection_errors: queue.SimpleQueue[str]) -> None:
    while not connection_errors.empty():
        note(f"connection: {_safe(connection_errors.get())}")


def _discard_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _check_usage(
    protocol: str,
    cert: str | None,
    key: str | None,
    require_client_cert: bool,
    client_ca: str | None,
) -> None:
    if protocol == "tls" and not (cert and key):
        raise click.UsageError("--protocol tls needs --cert and --key (the server certificate)")
    if protocol != "tls" and (cert or key or require_client_cert or client_ca):
        raise click.UsageError(
            "--cert, --key, --require-client-cert and --client-ca need --protocol tls"
        )
    if require_client_cert and not client_ca:
        raise click.UsageError("--require-client-cert needs --client-ca (the clients' CA)")
    if client_ca and not require_client_cert:
        raise click.UsageError("--client-ca is used only with --require-client-cert")


class _StopFlag:
    """SIGINT/SIGTERM only set a flag; the loop notices it within 0.2 s."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Outside the main thread (an embedding caller) Ctrl-C keeps its default.
            with contextlib.suppress(ValueError):
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:  # a second Ctrl-C / SIGTERM: stop now, whatever the loop is doing
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _safe(text: str) -> str:
    """Control and format characters shown as escapes: received data must not drive the
    terminal (an ESC sequence or a bidi override in a host name stays visible text)."""
    if text.isprintable():
        return text
    return "".join(
        c
        if c.isprintable() or unicodedata.category(c) == "Zs"
        else c.encode("unicode_escape").decode()
        for c in text
    )


def _clip(text: str, width: int) -> str:
    text = _safe(text)
    return text if len(text) <= width else text[: width - 1] + "…"


class _JsonRenderer:
    def __call__(self, message: ReceivedMessage) -> None:
        sys.stdout.write(json.dumps(message.to_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()


class _RowRenderer:
    """One line per message, printed as it arrives (not a buffered table)."""

    def __init__(self) -> None:
        from azs_syslog.cli.output import console

        self.console: Console = console()

    def __call__(self, message: ReceivedMessage) -> None:
        self.console.print(self.row(message), soft_wrap=True)
        self.console.file.flush()

    @staticmethod
    def row(message: ReceivedMessage) -> Text:
        from rich.text import Text

        stamp = time.strftime("%H:%M:%S", time.localtime(message.received_at))
        millis = int(message.received_at * 1000) % 1000
        row = Text()
        row.append(f"{stamp}.{millis:03d} ", style="dim")
        row.append(f"{message.transport:<3} {_clip(message.peer, 22):<22} ")
        if message.valid:
            row.append("ok  ", style="green")
            severity = message.cef_severity or "?"
            row.append(f"sev {severity:>2}  ", style=_severity_style(severity))
            row.append(f"{_clip(message.host or '-', 24)}  ", style="blue")
            row.append(_clip(message.signature_id or "", 48), style="bold")
            row.append(" | ")
            row.append(_clip(message.name or "", 40))
            pairs = list(message.extensions.items())
            for key, value in pairs[:_EXTENSIONS_SHOWN]:
                row.append(f"  {_clip(key, 24)}=", style="cyan")
                row.append(_clip(value, _VALUE_WIDTH))
            if len(pairs) > _EXTENSIONS_SHOWN:
                row.append(f"  (+{len(pairs) - _EXTENSIONS_SHOWN} more)", style="dim")
        else:
            row.append("BAD ", style="bold red")
            row.append("; ".join(_safe(str(p)) for p in message.errors), style="red")
            row.append("  raw: ", style="dim")
            row.append(_clip(repr(message.text), 80), style="dim")
        for text in message.notes:
            row.append(f"  (note: {_safe(text)})", style="yellow")
        return row


def _severity_style(severity: str) -> str:
    if not severity.isdigit():
        return ""
    value = int(severity)
    if value >= 9:
        return "bold red"
    if value >= 7:
        return "red"
    if value >= 4:
        return "yellow"
    return ""


def _print_summary(counts: Counts, elapsed: float, shown: int) -> None:
    def listing(counter: Any) -> str:
        return ", ".join(f"{_safe(str(k))} {v}" for k, v in counter.most_common()) or "none"

    note(
        f"summary: {counts.received} received in {elapsed:.1f} s, {counts.valid} valid, "
        f"{counts.malformed} malformed"
    )
    if counts.malformed:
        note(f"  malformed by reason: {listing(counts.by_reason)}")
    if counts.received:
        note(f"  by transport: {listing(counts.by_transport)}")
        peers = ", ".join(
            f"{_safe(peer)} {n}"
            + (
                f" ({counts.malformed_by_peer[peer]} malformed)"
                if counts.malformed_by_peer[peer]
                else ""
            )
            for peer, n in counts.by_peer.most_common()
        )
        note(f"  by peer: {peers}")
    if counts.connections or counts.handshake_failures:
        note(
            f"  connections: {counts.connections}, TLS handshake failures: "
            f"{counts.handshake_failures}"
        )
    if shown < counts.received:
        note(f"  shown: {shown} (the rest came after --count was reached, or could not be shown)")
    if counts.dropped:
        note(f"  dropped (shown too slowly): {counts.dropped}")
