"""Transport throughput: azs-syslog's senders beside a bare Python socket, same run, same sink.

    PYTHONPATH=. python benchmarks/transport_baseline.py [--messages 1000000] [--batch 2000]

A sink process on 127.0.0.1 reads and discards (TLS: decrypts and discards; UDP: counts
datagrams). Both the baseline and azs-syslog send the same pre-built ~700-byte messages:

Each side runs twice, alternating with the other; the best run of each is printed.

* TLS baseline: a bare ``ssl`` socket, one ``sendall`` per batch blob. azs-syslog:
  ``transport.connect()`` (verified TLS, keepalive, timeouts) and ``Sender.send(blob, lengths)``.
* UDP baseline: a bare connected socket, ``send(message)`` over a list of bytes objects.
  azs-syslog: ``Sender.send(blob, lengths)``, one datagram per message sliced from the blob.

Targets (SPEC section 10): TLS >= 500,000 messages/s, UDP >= 200,000 datagrams/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from azs_syslog.config import ClientSettings, ServerSettings
from azs_syslog.lab import pki
from azs_syslog.transport import UDP_SEND_BUFFER, connect
from benchmarks.transport_common import MESSAGE_SIZE, batches, build_messages


def tls_sink(cert: str, key: str, port_queue: multiprocessing.Queue[int], connections: int) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port_queue.put(server.getsockname()[1])
        for _ in range(connections):
            conn, _ = server.accept()
            with ctx.wrap_socket(conn, server_side=True) as tls:
                buffer = bytearray(1 << 20)
                try:
                    while tls.recv_into(buffer):
                        pass
                    tls.unwrap().close()
                except (OSError, ssl.SSLError):
                    pass


def udp_sink(
    port_queue: multiprocessing.Queue[int], count_queue: multiprocessing.Queue[int]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("127.0.0.1", 0))
        port_queue.put(sock.getsockname()[1])
        buffer = bytearray(65536)
        received = 0
        sock.settimeout(2.0)
        try:
            while True:
                n = sock.recv_into(buffer)
                if n == 3 and buffer[:3] == b"END":
                    # Two runs share the sink: report each run's count.
                    count_queue.put(received)
                    received = 0
                    continue
                received += 1
        except TimeoutError:
            pass


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f}/s"


def bench_tls(messages: list[bytes], batch: int, directory: Path) -> tuple[float, float]:
    ca = pki.make_ca()
    server = pki.issue(ca, "localhost", dns_names=("localhost",), server=True)
    cert, key = server.write(directory, "server")
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem())
    blobs = batches(messages, batch, framed=True)
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    sink = multiprocessing.Process(target=tls_sink, args=(str(cert), str(key), ports, 4))
    sink.start()
    port = ports.get(timeout=10)

    ctx = ssl.create_default_context(cafile=str(ca_file))

    def bare_run() -> float:
        raw = socket.create_connection(("127.0.0.1", port))
        bare = ctx.wrap_socket(raw, server_hostname="localhost")
        start = time.perf_counter()
        for wire, _ in blobs:
            bare.sendall(wire)
        bare.unwrap().close()
        return time.perf_counter() - start

    def our_run() -> float:
        settings = ServerSettings("localhost", port, trusted_ca=str(ca_file))
        sender = connect(settings, ClientSettings())
        send = sender.send
        start = time.perf_counter()
        for wire, lengths in blobs:
            send(wire, lengths)
        sender.close(timeout=10)
        return time.perf_counter() - start

    # Best of two rounds each, alternating, so that neither side always runs first.
    runs = [bare_run(), our_run(), our_run(), bare_run()]
    sink.join(10)
    return min(runs[0], runs[3]), min(runs[1], runs[2])


def bench_udp(messages: list[bytes], batch: int) -> tuple[float, float, int, int]:
    """Best of two rounds each, in alternating order: a UDP sink that keeps up with the sender
    is woken for every datagram, which slows whichever run happens to meet that state."""
    blobs = batches(messages, batch, framed=False)
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    counts: multiprocessing.Queue[int] = multiprocessing.Queue()
    sink = multiprocessing.Process(target=udp_sink, args=(ports, counts))
    sink.start()
    port = ports.get(timeout=10)

    def bare_run() -> tuple[float, int]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as bare:
            # The same send buffer as azs-syslog's sender, so that only the loops differ.
            bare.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UDP_SEND_BUFFER)
            bare.connect(("127.0.0.1", port))
            send_bare = bare.send
            start = time.perf_counter()
            for m in messages:
                send_bare(m)
            elapsed = time.perf_counter() - start
            time.sleep(0.3)
            bare.send(b"END")
        return elapsed, counts.get(timeout=10)

    def our_run() -> tuple[float, int]:
        unpaced = ServerSettings("127.0.0.1", port, use_udp=True, no_encryption=True, udp_rate=0)
        sender = connect(unpaced, ClientSettings())
        send = sender.send
        start = time.perf_counter()
        for wire, lengths in blobs:
            send(wire, lengths)
        elapsed = time.perf_counter() - start
        time.sleep(0.3)
        sender.send(b"END", [3])
        sender.close()
        return elapsed, counts.get(timeout=10)

    runs = [bare_run(), our_run(), our_run(), bare_run()]
    sink.join(10)
    bare_best = min(runs[0], runs[3])
    ours_best = min(runs[1], runs[2])
    return bare_best[0], ours_best[0], bare_best[1], ours_best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    messages = build_messages(args.messages, b"Microsoft-Windows-Security-Auditing:4624")
    n = len(messages)
    print(f"{n:,} messages of {MESSAGE_SIZE} bytes, batches of {args.batch}, loopback sink")
    with tempfile.TemporaryDirectory() as tmp:
        baseline, ours = bench_tls(messages, args.batch, Path(tmp))
    print(f"TLS  bare ssl socket sendall   {rate(n, baseline)}")
    print(
        f"TLS  azs-syslog Sender.send    {rate(n, ours)}   "
        f"({baseline / ours:.0%} of bare; target 500,000/s)"
    )
    baseline, ours, got_bare, got_ours = bench_udp(messages, args.batch)
    print(f"UDP  bare socket send loop     {rate(n, baseline)}   (sink received {got_bare:,})")
    print(
        f"UDP  azs-syslog Sender.send    {rate(n, ours)}   (sink received {got_ours:,}; "
        f"{baseline / ours:.0%} of bare; target 200,000/s)"
    )


if __name__ == "__main__":
    main()
