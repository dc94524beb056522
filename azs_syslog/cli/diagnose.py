"""``azs-syslog test-syslog-server``: diagnose the connection to the configured server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from azs_syslog.cli.exit_codes import ExitCode
from azs_syslog.cli.output import emit_json, json_option

if TYPE_CHECKING:
    from azs_syslog.forwarder.diagnose import Diagnosis

MARKS = {"ok": "ok", "failed": "FAILED", "skipped": "skipped", "not run": "not run"}


def _render(result: Diagnosis) -> None:
    title = result.server or "(no server configured)"
    click.echo(f"test-syslog-server: {title}")
    width = max(len(step.name) for step in result.steps)
    for step in result.steps:
        mark = MARKS.get(step.status, step.status)
        click.echo(f"  {step.name:<{width}}  {mark:<7}  {step.summary}")
        if step.name == "tls" and step.status == "ok":
            for index, cert in enumerate(step.details.get("server_chain", [])):
                role = "server" if index == 0 else "issuer"
                click.echo(
                    f"  {'':<{width}}  {'':<7}    {role}: {cert['subject']} "
                    f"(issued by {cert['issuer']}, valid until {cert['not_after']})"
                )
        if step.fix:
            click.echo(f"  {'':<{width}}  {'':<7}  fix: {step.fix}")
    click.echo("result: " + ("every step passed" if result.ok else "FAILED"))


@click.command("test-syslog-server")
@click.option(
    "--send-test-event",
    is_flag=True,
    help="Also send one test event (a CEF message named as a test) and wait for its TCP ACK.",
)
@json_option
@click.pass_context
def test_syslog_server(ctx: click.Context, send_test_event: bool, as_json: bool) -> None:
    """Connect with the current configuration and report each step: DNS, TCP connect, TLS
    handshake (version, cipher, server chain, name check, client certificate requested or not),
    and optionally one test event. Exit code 0 when every step passed, 1 otherwise.

    \b
    Examples:
      azs-syslog test-syslog-server
      azs-syslog test-syslog-server --send-test-event
      azs-syslog test-syslog-server --json | jq '.steps[] | select(.status != "ok")'
    """
    from azs_syslog.config import load_config
    from azs_syslog.forwarder.diagnose import diagnose

    result = diagnose(load_config(), send_test_event=send_test_event)
    if as_json:
        emit_json(result.to_dict())
    else:
        _render(result)
    ctx.exit(ExitCode.OK if result.ok else ExitCode.FAILED)
