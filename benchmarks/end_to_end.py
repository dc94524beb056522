"""Benchmark: send-event → durable queue → forwarder → rsyslog, beside bare-socket baselines.

    PYTHONPATH=$PWD python benchmarks/end_to_end.py [--events 1000000] [--skip-udp]
        [--evtx-folder DIR] [--only-producer]

Everything runs on this machine, on loopback, against a real rsyslog (tests/receivers.py):

1. end to end over TLS: the forwarder runs, connected; ``send-event FILE`` of N realistic
   Windows events (~20 extensions, ~800 B of JSON each); the clock stops when rsyslog has
   written the N-th message. Then the same with ``send-event --jobs 2``. Baselines, with the
   same framed messages: *bare*, a Python TLS socket writing them to a fresh rsyslog in 1 MiB
   ``sendall`` calls; *peer*, what a user would pick instead for durable forwarding: the same
   bare socket writing to an rsyslog that forwards every message over TLS to another rsyslog
   through a pure disk action queue (``queue.type="Disk"``), and, as a second line, through a
   disk-assisted queue (``LinkedList`` with ``queue.filename``: memory first, disk when it
   fills or at shutdown). rsyslog's disk queue does not sync its files by default
   (``queue.syncQueueFiles="off"``), unlike the queue here, which syncs every commit.
   The same section then runs on the records of the ``.evtx`` files of ``--evtx-folder``
   (default: the test fixtures; real shapes), repeated to N events and sent with
   OutputSeverity Verbose (so every record is sent).
2. draining a full queue over TLS: N events queued while the forwarder is stopped; the
   clock runs from the forwarder's start to rsyslog's N-th message. Same baseline.
3. UDP: the same drain over UDP (rsyslog with a 64 MiB receive buffer); messages lost by the
   receiver are reported. Baseline: a bare UDP socket sending the same datagrams.
   Also against a discarding TLS sink (a Python thread that decrypts and drops), to show the
   forwarder's own ceiling when the receiver is not the limit; baseline: bare TLS to that sink.
4. memory: the forwarder's peak RSS (VmHWM) while draining N queued events, beside the RSS of
   a bare ``python -c 'import ssl, sqlite3'`` process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from azs_syslog.encode.render import Renderer, RenderSettings
from tests.receivers import RsyslogReceiver, TestPKI
from tests.test_send_event import windows_event

REPO = Path(__file__).resolve().parent.parent
ENV = dict(os.environ)


class LineCounter:
    """Counts the messages rsyslog has written, reading only what was appended."""

    def __init__(self, receiver: RsyslogReceiver) -> None:
        self.path = receiver.output_file
        self.offset = 0
        self.count = 0
        self.first: float | None = None  # when the first message was seen

    def poll(self) -> int:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                while chunk := handle.read(1 << 24):
                    self.count += chunk.count(b"\n")
                    self.offset += len(chunk)
                    if self.first is None and self.count:
                        self.first = time.monotonic()
        except FileNotFoundError:
            pass
        return self.count

    def wait(self, count: int, timeout: float, idle: float = 10.0) -> tuple[int, float]:
        """Wait for ``count`` messages; give up after ``idle`` s without progress. Returns the
        count and the time the last progress was seen."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            seen = self.poll()
            now = time.monotonic()
            if seen != last:
                last, last_change = seen, now
            if seen >= count or now - last_change > idle:
                return seen, last_change
            time.sleep(0.02)
        return self.poll(), time.monotonic()


def cli(*args: str, stdin: bytes | None = None) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "azs_syslog", *args],
        input=stdin,
        capture_output=True,
        env=ENV,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"azs-syslog {' '.join(args)} failed: {proc.stderr.decode()}")


def configure(receiver: RsyslogReceiver, pki: TestPKI, mode: str) -> None:
    args = ["set-syslog-server", "--server-name", "127.0.0.1", "--server-port", str(receiver.port)]
    if mode == "udp":
        # Unpaced: this measures the forwarder's ceiling into a 64 MiB receive buffer
        # (benchmarks/udp_pacing.py measures pacing against a stock receiver).
        args += ["--use-udp", "--udp-rate", "0"]
    else:
        args += ["--trusted-ca", str(pki.ca_file)]
    cli(*args)


class Forwarder:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "azs_syslog", "forwarder", "run"],
            stdout=subprocess.DEVNULL,
            stderr=(home / "forwarder.log").open("ab"),
            env=ENV,
        )

    def wait_state(self, state: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        status_file = self.home / "state" / "status.json"
        while time.monotonic() < deadline:
            try:
                status = json.loads(status_file.read_text())
                if status.get("pid") == self.proc.pid and status.get("state") == state:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        raise SystemExit(f"the forwarder did not reach {state!r}")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def bare_rss_mb() -> float:
    code = (
        "import ssl, sqlite3, pathlib;"
        "print([l for l in pathlib.Path('/proc/self/status').read_text().splitlines()"
        " if l.startswith('VmHWM:')][0].split()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    return int(out.stdout) / 1024


def tls_baseline(
    receiver: RsyslogReceiver, pki: TestPKI, blob: bytes, repeat: int, via: int | None = None
) -> float:
    """Pre-rendered framed messages over a bare TLS socket (to port ``via``, a relay, when
    given); messages/s as ``receiver`` writes them."""
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    counter = LineCounter(receiver)
    messages = _count_framed(blob)
    start = time.monotonic()
    with (
        socket.create_connection(("127.0.0.1", via or receiver.port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        view = memoryview(blob)
        for _ in range(repeat):
            for offset in range(0, len(blob), 1 << 20):
                sock.sendall(view[offset : offset + (1 << 20)])
        got, last = counter.wait(messages * repeat, timeout=600)
        sock.unwrap()
    return got / (last - start)


class RsyslogRelay(RsyslogReceiver):
    """An rsyslog that receives over TLS and forwards every message, unchanged, over TLS to
    ``downstream`` through an action queue of ``queue_type``: "Disk" (a pure disk queue) or
    "LinkedList" (with a file name: disk-assisted). Stopped by its PID (``stop``)."""

    def __init__(
        self, directory: Path, pki: TestPKI, downstream: RsyslogReceiver, queue_type: str
    ) -> None:
        super().__init__(directory, "tls", pki=pki)
        self.downstream = downstream
        self.queue_type = queue_type

    def config_text(self) -> str:
        text = super().config_text()
        head = text[: text.index('template(name="rawline"')]
        queue = (
            f'queue.type="{self.queue_type}" queue.filename="forward"'
            f' queue.spoolDirectory="{self.work_dir}" queue.saveOnShutdown="on"'
        )
        return head + (
            'template(name="rawforward" type="string" string="%rawmsg%")\n'
            'ruleset(name="received") {\n'
            f'  action(type="omfwd" target="127.0.0.1" port="{self.downstream.port}"'
            ' protocol="tcp" TCP_Framing="octet-counted" StreamDriver="ossl"'
            ' StreamDriverMode="1" StreamDriverAuthMode="x509/certvalid"'
            f' template="rawforward" {queue})\n'
            "}\n"
        )


def peer_rate(tmp: Path, pki: TestPKI, blob: bytes, repeat: int, queue_type: str) -> float:
    """rsyslog → rsyslog over TLS through an action queue of ``queue_type``: messages/s from
    the first byte written to the relay to the downstream rsyslog's last message."""
    name = f"{queue_type.lower()}-{time.monotonic_ns()}"
    receiver = RsyslogReceiver(tmp / f"rsyslog-peer-{name}", "tls", pki=pki).start()
    relay = RsyslogRelay(tmp / f"rsyslog-relay-{name}", pki, receiver, queue_type)
    try:
        relay.start()
        return tls_baseline(receiver, pki, blob, repeat, via=relay.port)
    finally:
        relay.stop()
        receiver.stop()


def udp_baseline(
    receiver: RsyslogReceiver, messages: list[bytes], repeat: int
) -> tuple[float, float, int]:
    counter = LineCounter(receiver)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", receiver.port))
        start = time.monotonic()
        for _ in range(repeat):
            for message in messages:
                sock.send(message)
        sent_s = time.monotonic() - start
    got, last = counter.wait(len(messages) * repeat, timeout=600, idle=3)
    return len(messages) * repeat / sent_s, got / max(last - start, 1e-9), got


class DiscardTlsSink:
    """Accepts one TLS connection at a time, decrypts and drops; counts plaintext bytes."""

    def __init__(self, pki: TestPKI) -> None:
        import threading

        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = 0
        self.first: float | None = None
        self.last = time.monotonic()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(raw, server_side=True) as conn:
                    buffer = bytearray(1 << 20)
                    while True:
                        got = conn.recv_into(buffer)
                        if not got:
                            break
                        self.received += got
                        self.last = time.monotonic()
                        if self.first is None:
                            self.first = self.last
            except (OSError, ssl.SSLError):
                continue

    def wait(self, total: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.received < total and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.last

    def close(self) -> None:
        self.listener.close()


def queued_wire_bytes(home: Path) -> int:
    import sqlite3

    db = sqlite3.connect(home / "state" / "queue.sqlite3")
    try:
        # Not the audit records pinned to a server that is no longer configured: they are
        # never sent to this one (docs/operations.md, "The audit trail").
        query = (
            "SELECT COALESCE(SUM(LENGTH(wire)), 0) FROM batches"
            " WHERE id NOT IN (SELECT batch_id FROM pinned)"
        )
        return int(db.execute(query).fetchone()[0])
    finally:
        db.close()


def _count_framed(blob: bytes) -> int:
    count, offset = 0, 0
    while offset < len(blob):
        space = blob.index(b" ", offset)
        offset = space + 1 + int(blob[offset:space])
        count += 1
    return count


Row = tuple[str, str, str, str, str]  # measure, azs-syslog, bare, rsyslog disk, rsyslog DA


def write_events(path: Path, line_at: Callable[[int], str], n: int) -> None:
    with path.open("w") as handle:
        for i in range(n):
            handle.write(line_at(i) + "\n")


def producer_section(
    tmp: Path,
    home: Path,
    pki: TestPKI,
    label: str,
    line_at: Callable[[int], str],
    n: int,
    *,
    verbose: bool,
) -> list[Row]:
    """End to end over TLS (``send-event FILE`` with the forwarder connected), ``send-event``
    alone, ``--jobs 2``; beside the bare TLS baseline and the rsyslog peers, all with the same
    framed messages."""
    events_file = tmp / f"events-{label.split()[0]}.jsonl"
    write_events(events_file, line_at, n)
    settings = replace(RenderSettings(), output_severity="Verbose" if verbose else "Default")
    renderer = Renderer(settings)
    sample = min(n, 100_000)
    framed = b"".join(renderer.render_line(line_at(i), 0) or b"" for i in range(sample))
    repeat = max(1, n // sample)
    messages = _count_framed(framed)
    print(
        f"{label}: {n:,} events, {events_file.stat().st_size / n:.0f} B of JSON each, "
        f"{len(framed) / max(messages, 1):.0f} B framed ({messages:,} of {sample:,} sent)",
        flush=True,
    )
    cli("set-syslog-client", "--output-severity", "Verbose" if verbose else "Default")
    receiver = RsyslogReceiver(tmp / f"rsyslog-e2e-{label.split()[0]}", "tls", pki=pki).start()
    configure(receiver, pki, "tls")
    worker = Forwarder(home)
    worker.wait_state("connected")
    counter = LineCounter(receiver)
    start = time.monotonic()
    cli("send-event", str(events_file))
    queued_s = time.monotonic() - start
    got, last = counter.wait(n, timeout=3600)
    e2e = got / (last - start)
    # the same with two producer processes (send-event --jobs 2)
    counter.poll()
    already = counter.count
    start = time.monotonic()
    cli("send-event", "--jobs", "2", str(events_file))
    got, last = counter.wait(already + n, timeout=3600)
    e2e_jobs = (got - already) / (last - start)
    worker.stop()
    receiver.stop()
    base_receiver = RsyslogReceiver(tmp / f"rsyslog-base-{label.split()[0]}", "tls", pki=pki)
    base_receiver.start()
    tls_base = tls_baseline(base_receiver, pki, framed, repeat)
    base_receiver.stop()
    disk = peer_rate(tmp, pki, framed, repeat, "Disk")
    assisted = peer_rate(tmp, pki, framed, repeat, "LinkedList")
    peers = (f"{tls_base:,.0f}", f"{disk:,.0f}", f"{assisted:,.0f}")
    rows: list[Row] = [
        (f"{label}: end to end, TLS (events/s)", f"{e2e:,.0f}", *peers),
        ("  of which send-event alone", f"{n / queued_s:,.0f}", "", "", ""),
        ("  end to end, send-event --jobs 2", f"{e2e_jobs:,.0f}", *peers),
    ]
    print(rows, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-udp", action="store_true")
    parser.add_argument("--evtx-folder", type=Path, default=REPO / "tests" / "fixtures" / "evtx")
    parser.add_argument(
        "--only-producer", action="store_true", help="section 1 only (end to end, peers)"
    )
    args = parser.parse_args()
    n = args.events
    results: list[Row] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp_text:
        tmp = Path(tmp_text)
        home = tmp / "home"
        ENV.update(
            AZS_SYSLOG_HOME=str(home),
            PYTHONPATH=str(REPO),
            # Let N events fit in the queue, whatever their size.
            AZS_SYSLOG_QUEUE_MAX_BYTES=str(8 << 30),
        )
        os.environ.update(ENV)
        pki = TestPKI.create(tmp / "pki")
        # 1. end to end over TLS, on the synthetic event and on real records
        results += producer_section(tmp, home, pki, "synthetic", windows_event, n, verbose=False)
        real = evtx_lines(args.evtx_folder)
        results += producer_section(
            tmp,
            home,
            pki,
            f"{len(real):,} .evtx records",
            lambda i: real[i % len(real)],
            n,
            verbose=True,
        )
        cli("set-syslog-client", "--output-severity", "Default")
        if args.only_producer:
            print_table(results)
            return
        events_file = tmp / "events-synthetic.jsonl"
        sample = min(n, 100_000)
        renderer = Renderer(RenderSettings())
        framed = b"".join(renderer.render_line(windows_event(i), 0) or b"" for i in range(sample))
        repeat = max(1, n // sample)
        tls_base = float(results[0][2].replace(",", ""))

        # 2. draining a full queue over TLS, and the forwarder's memory
        receiver = RsyslogReceiver(tmp / "rsyslog-drain", "tls", pki=pki).start()
        configure(receiver, pki, "tls")
        cli("send-event", str(events_file))
        counter = LineCounter(receiver)
        start = time.monotonic()
        worker = Forwarder(home)
        got, last = counter.wait(n, timeout=3600)
        drain = got / (last - start)
        drain_steady = got / (last - (counter.first or start))
        rss = worker.peak_rss_mb()
        worker.stop()
        receiver.stop()
        results.append(
            ("drain a full queue, TLS (events/s)", f"{drain:,.0f}", f"{tls_base:,.0f}", "", "")
        )
        results.append(("  from the first message received", f"{drain_steady:,.0f}", "", "", ""))
        results.append(
            (f"forwarder peak RSS, {n:,} queued (MB)", f"{rss:.0f}", f"{bare_rss_mb():.0f}", "", "")
        )
        print(results[-3:], flush=True)

        # 2b. the same drain to a discarding TLS sink: the forwarder's own ceiling
        sink = DiscardTlsSink(pki)
        cli(
            "set-syslog-server",
            "--server-name",
            "127.0.0.1",
            "--server-port",
            str(sink.port),
            "--trusted-ca",
            str(pki.ca_file),
        )
        cli("send-event", str(events_file))
        total = queued_wire_bytes(home)
        start = time.monotonic()
        worker = Forwarder(home)
        last = sink.wait(total, timeout=600)
        delivered = n * min(1.0, sink.received / total)
        sink_drain = delivered / (last - start)
        sink_steady = delivered / (last - (sink.first or start))
        worker.stop()
        context = ssl.create_default_context(cafile=str(pki.ca_file))
        before = sink.received
        start = time.monotonic()
        with (
            socket.create_connection(("127.0.0.1", sink.port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            view = memoryview(framed)
            for _ in range(repeat):
                for offset in range(0, len(framed), 1 << 20):
                    sock.sendall(view[offset : offset + (1 << 20)])
            last = sink.wait(before + len(framed) * repeat, timeout=600)
        sink_base = sample * repeat / (last - start)
        sink.close()
        results.append(
            (
                "drain, TLS to a discarding sink (events/s)",
                f"{sink_drain:,.0f}",
                f"{sink_base:,.0f}",
                "",
                "",
            )
        )
        results.append(("  from the first byte received", f"{sink_steady:,.0f}", "", "", ""))
        print(results[-2:], flush=True)

        # 3. UDP
        if not args.skip_udp:
            receiver = RsyslogReceiver(tmp / "rsyslog-udp", "udp").start()
            configure(receiver, pki, "udp")
            cli("send-event", str(events_file))
            counter = LineCounter(receiver)
            start = time.monotonic()
            worker = Forwarder(home)
            got, last = counter.wait(n, timeout=3600, idle=3)
            udp = got / (last - start)
            worker.stop()
            receiver.stop()
            udp_settings = replace(RenderSettings(), framing="none")
            udp_renderer = Renderer(udp_settings)
            datagrams = [
                udp_renderer.render_line(windows_event(i), 0) or b"" for i in range(sample)
            ]
            base_receiver = RsyslogReceiver(tmp / "rsyslog-base-udp", "udp").start()
            sent_rate, base_rate, base_got = udp_baseline(base_receiver, datagrams, repeat)
            base_receiver.stop()
            results.append(
                ("UDP drain, received (events/s)", f"{udp:,.0f}", f"{base_rate:,.0f}", "", "")
            )
            results.append(
                (
                    "  lost by the receiver",
                    f"{n - got:,}",
                    f"{len(datagrams) * repeat - base_got:,}",
                    "",
                    "",
                )
            )
            results.append(("  bare socket send rate", "", f"{sent_rate:,.0f}", "", ""))

    print_table(results)


def print_table(results: list[Row]) -> None:
    print()
    head = ("azs-syslog", "bare baseline", "rsyslog disk", "rsyslog DA")
    print(f"{'':48}" + "".join(f"{title:>15}" for title in head))
    for name, *figures in results:
        print(f"{name:48}" + "".join(f"{figure:>15}" for figure in figures))


def evtx_lines(folder: Path) -> list[str]:
    """The valid records of the ``.evtx`` files in ``folder``, as JSON lines."""
    from benchmarks.queue_store import evtx_lines as read

    return read(folder)


if __name__ == "__main__":
    from benchmarks.installed import compile_bytecode

    compile_bytecode()  # as an install has it (benchmarks/installed.py)
    main()
