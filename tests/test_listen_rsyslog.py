"""A real sender: rsyslog (OpenSSL driver) forwards to ``listen`` over mutual TLS and TCP.

This checks the receiver against an independent implementation of octet counting, LF framing,
RFC 3164 / RFC 5424 headers and TLS client authentication. (The forwarder's own tests use
rsyslog as the receiver; this is the other way round.)
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from azs_syslog.lab.receiver import Listener, server_ssl_context
from tests.receivers import TestPKI, rsyslogd_with

pytestmark = pytest.mark.rsyslog

CEF = (
    b"CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|Microsoft-AzureStack-PrivilegedEndpoint: "
    b"1000|PrivilegedEndpointAccessedEvent|5|Who=admin WhichIP=10.0.0.1 msg=a\\=b c|d"
)


def rsyslog_config(work: Path, certs: dict[str, Path], tls_port: int, tcp_port: int) -> str:
    return f"""
global(workDirectory="{work}"
       DefaultNetstreamDriverCAFile="{certs["ca"]}"
       DefaultNetstreamDriverCertFile="{certs["cert"]}"
       DefaultNetstreamDriverKeyFile="{certs["key"]}")
module(load="imtcp")
input(type="imtcp" port="0" address="127.0.0.1" listenPortFileName="{work}/input-port")
template(name="cef3164" type="string" string="<%PRI%>%TIMESTAMP% %HOSTNAME% %syslogtag%%msg%")
template(name="cef5424" type="list") {{
    constant(value="<") property(name="pri") constant(value=">1 ")
    property(name="timestamp" dateFormat="rfc3339") constant(value=" ")
    property(name="hostname") constant(value=" azs-syslog - PEP - ")
    property(name="syslogtag") property(name="msg")
}}
action(type="omfwd" target="127.0.0.1" port="{tls_port}" protocol="tcp"
       StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
       StreamDriverPermittedPeers="localhost" TCP_Framing="octet-counted" template="cef3164")
action(type="omfwd" target="127.0.0.1" port="{tcp_port}" protocol="tcp"
       TCP_Framing="traditional" template="cef5424")
"""


def test_rsyslog_forwards_to_listen_over_mutual_tls_and_tcp(tmp_path: Path) -> None:
    files = TestPKI.create(tmp_path, ca_name="listen rsyslog CA", client_name="rsyslog-sender")
    work = tmp_path / "work"
    work.mkdir()
    context = server_ssl_context(str(files.server_cert), str(files.server_key), str(files.ca_file))
    with (
        Listener("tls", "127.0.0.1", 0, ssl_context=context) as tls,
        Listener("tcp", "127.0.0.1", 0) as tcp,
    ):
        certs = {"ca": files.ca_file, "cert": files.client_cert, "key": files.client_key}
        config = rsyslog_config(work, certs, tls.port, tcp.port)
        with rsyslogd_with(work, config, work / "input-port", protocol="tls") as (port, output):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"<85>Nov  6 10:00:00 azs-node1 " + CEF + b"\n")
            via_tls = tls.collect(1, 20)
            via_tcp = tcp.collect(1, 20)
    stderr = output.read_text(errors="replace")
    assert via_tls and via_tcp, stderr
    for message in (via_tls[0], via_tcp[0]):
        assert message.valid, message.errors
        assert message.host == "azs-node1"
        assert message.pri == 85
        assert message.signature_id == "Microsoft-AzureStack-PrivilegedEndpoint: 1000"
        assert message.extensions == {"Who": "admin", "WhichIP": "10.0.0.1", "msg": "a=b c|d"}
    assert via_tls[0].framing == "octet-counting"
    assert via_tls[0].header_format == "rfc3164"
    assert via_tls[0].timestamp == "Nov  6 10:00:00"
    assert via_tls[0].peer_certificate == "commonName=rsyslog-sender"
    assert via_tcp[0].framing == "lf"
    assert via_tcp[0].header_format == "rfc5424"
    assert tls.counts.handshake_failures == 0
