"""Benchmark: how much of a UDP backlog a stock rsyslog on loopback receives, with and without
pacing (``set-syslog-server --udp-rate``).

    PYTHONPATH=$PWD python benchmarks/udp_pacing.py [--events 12750] [--rates 0,2000,5000]
                                                    [--repeat 2]

For each rate: a fresh rsyslog (``imudp``, the kernel's default receive buffer, i.e.
``net.core.rmem_default``, no rate limit) on a free loopback port; ``set-syslog-server
--use-udp --udp-rate RATE`` while no forwarder runs; ``send-event FILE`` of N realistic Windows
events (the backlog an outage leaves); then ``forwarder run`` drains it. The clock runs from
the forwarder's start until rsyslog has written its last message (3 s without a new one).
Reported: events the forwarder counted as sent, events rsyslog wrote, the difference (lost),
and the kernel's ``Udp RcvbufErrors`` counter over the run (datagrams dropped because the
receiver's buffer was full; other UDP traffic on the machine adds to it).

Everything stays on this machine, on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.transport_common import count_lines
from tests.receivers import RsyslogReceiver
from tests.test_send_event import windows_event

IDLE = 3.0  # seconds without a new message: the drain is over


def rcvbuf_errors() -> int:
    rows = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    udp = [row for row in rows if row and row[0] == "Udp:"]
    return int(udp[1][udp[0].index("RcvbufErrors")])


def cli(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "azs_syslog", *args],
        capture_output=True,
        env=env,
        check=False,
        timeout=600,
    )
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and args[0] != "forwarder"):
        raise SystemExit(f"azs-syslog {' '.join(args)} failed: {proc.stderr.decode()}")
    return proc.stdout.decode()


def drain_once(tmp: Path, events_file: Path, events: int, rate: int, run: int) -> dict[str, float]:
    home = tmp / f"home-{rate}-{run}"
    env = dict(os.environ, AZS_SYSLOG_HOME=str(home))
    receiver = RsyslogReceiver(tmp / f"rsyslog-{rate}-{run}", "udp", udp_receive_buffer=None)
    receiver.start()
    try:
        cli(
            env,
            "set-syslog-server",
            "--server-name",
            "127.0.0.1",
            "--server-port",
            str(receiver.port),
            "--use-udp",
            "--udp-rate",
            str(rate),
        )
        cli(env, "send-event", str(events_file))
        errors_before = rcvbuf_errors()
        started = time.monotonic()
        forwarder = subprocess.Popen(
            [sys.executable, "-m", "azs_syslog", "forwarder", "run"],
            stdout=subprocess.DEVNULL,
            stderr=(home / "forwarder.log").open("ab"),
            env=env,
        )
        try:
            seen, last_change = 0, time.monotonic()
            deadline = started + 600
            while time.monotonic() < deadline:
                now_seen = count_lines(receiver.output_file)
                now = time.monotonic()
                if now_seen != seen:
                    seen, last_change = now_seen, now
                if seen >= events or (seen and now - last_change > IDLE):
                    break
                time.sleep(0.05)
            elapsed = last_change - started
            status = json.loads(cli(env, "forwarder", "status", "--json"))
        finally:
            forwarder.send_signal(signal.SIGTERM)
            forwarder.wait(timeout=30)
        sent = int(((status.get("status") or {}).get("counts") or {}).get("sent", 0))
        received = count_lines(receiver.output_file)
        return {
            "sent": sent,
            "received": received,
            "lost": sent - received,
            "rcvbuf_errors": rcvbuf_errors() - errors_before,
            "seconds": elapsed,
        }
    finally:
        receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=12750)
    parser.add_argument("--rates", default="0,2000,5000")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    rmem = Path("/proc/sys/net/core/rmem_default").read_text().strip()
    print(
        f"{args.events:,} queued events to rsyslog over UDP on loopback; receive buffer "
        f"{rmem} bytes (rmem_default); load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="azs-udp-pacing-") as name:
        tmp = Path(name)
        events_file = tmp / "events.jsonl"
        events_file.write_text("".join(windows_event(i) + "\n" for i in range(args.events)))
        print(
            f"{'--udp-rate':>10} {'sent':>8} {'received':>9} {'lost':>7} {'RcvbufErrors':>13}"
            f" {'seconds':>8}"
        )
        for rate in rates:
            for run in range(args.repeat):
                result = drain_once(tmp, events_file, args.events, rate, run)
                print(
                    f"{rate:>10} {result['sent']:>8,} {result['received']:>9,}"
                    f" {result['lost']:>7,} {result['rcvbuf_errors']:>13,}"
                    f" {result['seconds']:>8.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
