"""RELP beside TCP and TLS, against real rsyslog receivers on 127.0.0.1, in the same run.

    PYTHONPATH=. python benchmarks/relp.py throughput [--messages 100000]
    PYTHONPATH=. python benchmarks/relp.py drill [--events 30000] [--rate 5000] [--kills 2]

``throughput``: the same pre-built ~700-byte messages through ``transport.connect()`` to rsyslog
(imtcp plain, imtcp with the ossl driver, imrelp plain and with TLS, several RELP windows),
timed until the receiver has written the last one to its file: the receiver is the limit.

``drill``: the operator's outage drill. Events are queued at ``--rate`` per second while a
forwarder worker (in this process) sends them; the receiver is SIGKILLed ``--kills`` times and
restarted half a second later. Printed per transport: events lost, events received twice, the
worker's ``resent`` count, and the explained error the status showed for each outage. TCP/TLS
also run with other replay windows (``--confirm-delays``) to show the trade-off.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from azs_syslog.forwarder.worker import CONFIRM_DELAY
from benchmarks.transport_common import MESSAGE_SIZE, batches, build_messages, count_lines


def receiver(directory: Path, kind: str, files: Any, direct: bool | None = None) -> Any:
    """rsyslog for ``kind``; ``direct``: its ruleset writes before answering (RELP's default,
    see tests/receivers.py), None for each protocol's default."""
    from tests.receivers import RsyslogReceiver

    options: dict[str, Any] = {"direct_queue": direct}
    if kind in ("tls", "mtls", "relp-tls", "relp-mtls"):
        options["pki"] = files
    if kind.endswith("mtls"):
        options["authmode"] = "x509/certvalid"
    if kind.startswith("relp"):
        return RsyslogReceiver(directory, "relp", relp_tls=kind != "relp-tcp", **options).start()
    return RsyslogReceiver(directory, "tcp" if kind == "tcp" else "tls", **options).start()


def server_for(kind: str, port: int, files: Any) -> Any:
    from azs_syslog.config import ServerSettings

    relp = kind.startswith("relp")
    plain = kind in ("tcp", "relp-tcp")
    return ServerSettings(
        "localhost",
        port,
        no_encryption=plain,
        trusted_ca=None if plain else str(files.ca_file),
        use_relp=relp,
    )


def client_for(kind: str, files: Any) -> Any:
    from tests.test_transport import client_settings

    return client_settings(files if kind.endswith("mtls") else None)


# --- throughput --------------------------------------------------------------------------------


def throughput(args: argparse.Namespace) -> None:
    from azs_syslog.transport import connect, relp
    from tests.receivers import TestPKI

    blobs = batches(build_messages(args.messages), args.batch, framed=True)
    runs = (
        [("tcp", None), ("tls", None)]
        + [("relp-tcp", w) for w in args.windows]
        + [("relp-tls", w) for w in args.windows]
    )
    with tempfile.TemporaryDirectory() as tmp:
        files = TestPKI.create(Path(tmp) / "pki")
        print(f"{args.messages} messages of {MESSAGE_SIZE} bytes to rsyslog on 127.0.0.1")
        print(
            "receiver queue: "
            + ("direct (writes before it answers) for all" if args.direct else "rsyslog's default")
        )
        print(f"{'transport':<12} {'window':>7} {'messages/s':>12} {'MB/s':>7}")
        for index, (kind, window) in enumerate(runs):
            rx = receiver(Path(tmp) / f"rx{index}", kind, files, direct=args.direct)
            try:
                server = server_for(kind, rx.port, files)
                client = client_for(kind, files)
                if kind.startswith("relp"):
                    sender: Any = relp.connect(server, client, window=window or relp.WINDOW)
                else:
                    sender = connect(server, client)
                started = time.perf_counter()
                for wire, lengths in blobs:
                    sender.send(wire, lengths)
                deadline = time.monotonic() + 300
                while count_lines(rx.output_file) < args.messages and time.monotonic() < deadline:
                    sender.unacknowledged_bytes()
                    time.sleep(0.005)
                elapsed = time.perf_counter() - started
                sender.close()
            finally:
                rx.stop()
            rate = args.messages / elapsed
            print(f"{kind:<12} {window or '-':>7} {rate:>12,.0f} {rate * MESSAGE_SIZE / 1e6:>7.1f}")


# --- the outage drill --------------------------------------------------------------------------


def drill_one(
    kind: str, args: argparse.Namespace, confirm_delay: float, tmp: Path
) -> dict[str, Any]:
    import os

    from azs_syslog import paths
    from azs_syslog.config import Config
    from azs_syslog.encode.render import Renderer, RenderSettings
    from azs_syslog.forwarder.worker import Worker, WorkerOptions
    from azs_syslog.queue import Queue
    from azs_syslog.queue.ingest import enqueue_records
    from tests.receivers import TestPKI

    home = tmp / f"home-{kind}-{confirm_delay}"
    os.environ["AZS_SYSLOG_HOME"] = str(home)
    files = TestPKI.create(tmp / f"pki-{kind}-{confirm_delay}")
    rx = receiver(tmp / f"rx-{kind}-{confirm_delay}", kind, files)
    config = Config(server=server_for(kind, rx.port, files), client=client_for(kind, files))
    settings = RenderSettings()
    renderer = Renderer(settings)
    options = WorkerOptions(
        socket_input=False, confirm_delay=confirm_delay, backoff_initial=0.2, backoff_max=1.0
    )
    worker = Worker(lambda: config, options=options)
    queue = Queue(paths.queue_file())
    outages: list[str] = []
    per_tick = max(1, args.rate // 20)
    total = args.events
    kill_at = [total * (k + 1) // (args.kills + 1) for k in range(args.kills)]
    queued = 0
    started = time.monotonic()
    restart_at: float | None = None
    kill_ms = 0
    outage = []
    try:
        deadline = started + total / args.rate + 120
        next_tick = started
        while time.monotonic() < deadline:
            now = time.monotonic()
            if queued < total and now >= next_tick:
                n = min(per_tick, total - queued)
                lines = (
                    (
                        queued + i,
                        json.dumps(
                            {
                                "type": "pep",
                                "event": "PrivilegedEndpointAccessed",
                                "who": f"op{queued + i}",
                                "which_ip": "10.0.0.1",
                            }
                        ),
                    )
                    for i in range(n)
                )
                enqueue_records(lines, queue, renderer, settings.key)
                queued += n
                next_tick += 0.05
            if kill_at and queued >= kill_at[0] and restart_at is None:
                kill_at.pop(0)
                rx.kill()
                kill_ms = int(time.time() * 1000)
                outage: list[str] = []
                restart_at = now + 0.5
            if restart_at is not None:
                error = worker.last_error
                if error is not None and error.at_ms >= kill_ms:
                    seen = f"{error.cause}: {error.message}"
                    if seen not in outage:
                        outage.append(seen)
                if now >= restart_at:
                    restart_at = None
                    outages.append(" / ".join(outage) or "no error shown")
                    rx.start()
            worker.step()
            finished = queued >= total and not kill_at and restart_at is None
            if finished and queue.depth().events == 0 and not worker.inflight:
                break
            time.sleep(0.001)
        # Let the receiver write out the last lines.
        settle = time.monotonic() + 5
        while count_lines(rx.output_file) < total and time.monotonic() < settle:
            time.sleep(0.05)
        counts = worker.status()["counts"]
    finally:
        worker.close()
        queue.close()
        rx.stop()
    ids: Counter[str] = Counter()
    for line in rx.output_file.read_bytes().split(b"\n"):
        marker = line.find(b"Who=op")
        if marker >= 0:
            ids[line[marker + 6 :].split(b" ", 1)[0].decode()] += 1
    expected = {str(i) for i in range(total)}
    lost = len(expected - set(ids))
    duplicates = sum(ids.values()) - len(ids)
    return {
        "transport": kind,
        "confirm_delay": confirm_delay,
        "lost": lost,
        "duplicates": duplicates,
        "resent": counts["resent"],
        "outages": outages,
    }


def drill(args: argparse.Namespace) -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.transports:
            delays = [1.0] if kind.startswith("relp") else args.confirm_delays
            for delay in delays:
                result = drill_one(kind, args, delay, Path(tmp))
                results.append(result)
                label = "-" if kind.startswith("relp") else f"{delay:g} s"
                print(
                    f"{kind:<10} replay window {label:>6}: lost {result['lost']:>5}, "
                    f"received twice {result['duplicates']:>5}, resent {result['resent']:>5}",
                    flush=True,
                )
                for outage in result["outages"]:
                    print(f"    status during the outage: {outage[:300]}")
    if args.json:
        print(json.dumps(results, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("throughput")
    one.add_argument("--messages", type=int, default=100_000)
    one.add_argument("--batch", type=int, default=2000)
    one.add_argument("--windows", type=int, nargs="+", default=[128, 1024, 4096])
    one.add_argument(
        "--direct",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="give every receiver a direct queue (RELP's setting for exact delivery)",
    )
    two = sub.add_parser("drill")
    two.add_argument("--events", type=int, default=30_000)
    two.add_argument("--rate", type=int, default=5000)
    two.add_argument("--kills", type=int, default=2)
    two.add_argument("--transports", nargs="+", default=["relp-mtls", "mtls"])
    two.add_argument(
        "--confirm-delays",
        type=float,
        nargs="+",
        default=[CONFIRM_DELAY],
        help="TCP/TLS replay windows to try (default: the forwarder's)",
    )
    two.add_argument("--json", action="store_true")
    args = parser.parse_args()
    throughput(args) if args.command == "throughput" else drill(args)


if __name__ == "__main__":
    main()
