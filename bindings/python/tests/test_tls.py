"""wss:// with a certificate made at test time (trustme: a throwaway CA and a leaf for
localhost and 127.0.0.1)."""

from __future__ import annotations

import ssl

import pytest
import websocket  # websocket-client
from websockets.sync.client import connect

import wsembed

from conftest import DEADLINE, Collector

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def leaf(ca):
    return ca.issue_cert("localhost", "127.0.0.1")


@pytest.fixture
def cert_files(leaf, tmp_path):
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


@pytest.fixture
def client_ctx(ca):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(ctx)
    return ctx


def echo_roundtrip(server: wsembed.Server, url: str, ctx: ssl.SSLContext) -> None:
    events = Collector(server)
    with connect(url, ssl=ctx, open_timeout=DEADLINE) as ws:
        opened = events.wait(wsembed.Open)
        assert opened.path == "/secure"
        ws.send("over tls ✓")
        msg = events.wait(wsembed.Message)
        server.send(msg.conn, msg.data)
        assert ws.recv(timeout=DEADLINE) == "over tls ✓"
        big = bytes(range(256)) * 1000  # several TLS records
        ws.send(big)
        msg = events.wait(wsembed.Message)
        assert msg.data == big
        server.send(msg.conn, msg.data)
        assert ws.recv(timeout=DEADLINE) == big
    close = events.wait(wsembed.Close)
    assert close.code == 1000 and close.clean


def test_wss_echo_with_cert_files(cert_files, client_ctx):
    with wsembed.Server(tls_cert_file=cert_files[0], tls_key_file=str(cert_files[1])) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        assert server.tls
        echo_roundtrip(server, server.url + "/secure", client_ctx)
        # The certificate names localhost too.
        echo_roundtrip(server, f"wss://localhost:{server.port}/secure", client_ctx)


def test_wss_with_tls_alias(cert_files, client_ctx):
    with wsembed.Server(tls=cert_files) as server:
        assert server.url == f"wss://127.0.0.1:{server.port}"
        assert repr(server).startswith("<wsembed.Server wss://")
        echo_roundtrip(server, server.url + "/secure", client_ctx)


def test_wss_with_pem_text(leaf, client_ctx):
    cert = leaf.cert_chain_pems[0].bytes().decode()
    key = leaf.private_key_pem.bytes().decode()
    with wsembed.Server(tls_cert_pem=cert, tls_key_pem=key) as server:
        assert server.url.startswith("wss://")
        echo_roundtrip(server, server.url + "/secure", client_ctx)


def test_plain_ws_server_reports_ws_url(server):
    assert server.url.startswith("ws://") and not server.tls


def test_untrusted_client_fails_and_plain_client_fails(cert_files):
    with wsembed.Server(tls=cert_files) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            with connect(server.url, ssl=ssl.create_default_context(), open_timeout=DEADLINE):
                pass
        with pytest.raises(Exception):
            ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}", timeout=DEADLINE)
            ws.close()
        # The server is fine afterwards, and nothing opened.
        assert all(not isinstance(e, wsembed.Open) for e in server.poll(0.1))
        assert server.stats().handshakes_accepted == 0


def test_bad_certificate_or_key_raises(tmp_path, cert_files, leaf):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cert, key = cert_files
    with pytest.raises(wsembed.InvalidArgumentError, match="TLS") as info:
        wsembed.Server(tls=(junk, key))
    assert info.value.code == 2
    with pytest.raises(wsembed.InvalidArgumentError, match="TLS"):
        wsembed.Server(tls=(cert, junk))
    # Key and certificate swapped.
    with pytest.raises(wsembed.InvalidArgumentError, match="TLS"):
        wsembed.Server(tls=(key, cert))
    # A certificate without a key.
    with pytest.raises(wsembed.InvalidArgumentError, match="TLS"):
        wsembed.Server(tls_cert_pem=leaf.cert_chain_pems[0].bytes().decode())
    with pytest.raises(wsembed.InvalidArgumentError, match="cannot read"):
        wsembed.Server(tls=(tmp_path / "missing.pem", key))
    with pytest.raises(TypeError):
        wsembed.Server(tls=str(cert))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        wsembed.Server(tls=(cert, key), tls_cert_file=cert)


def test_key_not_matching_certificate(tmp_path, ca, cert_files):
    other = ca.issue_cert("localhost")
    other_key = tmp_path / "other-key.pem"
    other.private_key_pem.write_to_path(str(other_key))
    with pytest.raises(wsembed.InvalidArgumentError, match="TLS"):
        wsembed.Server(tls=(cert_files[0], other_key))
