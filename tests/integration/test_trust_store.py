"""Trust, User-Agent and proxies with real sockets, all on 127.0.0.1.

- A wss:// gateway whose certificate comes from a private CA made here: once that CA is
  in the operating system's trust store (/usr/local/share/ca-certificates +
  update-ca-certificates), `polyphone call` gets through TLS without --ca-file, for the
  websocket and the ice-servers fetch; with the CA taken out again it is refused with the
  certificate message. The store is put back as it was (`update-ca-certificates --fresh`).
- The ice-servers GET and the websocket upgrade both carry Polyphone's User-Agent.
- With HTTPS_PROXY set, both clients reach a remote name through a CONNECT proxy (TLS end
  to end, checked against the gateway's name), and loopback never goes through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from websockets.asyncio.server import serve

from helpers.cli import run_polyphone
from helpers.tls import (
    BUNDLE,
    ca_in_system_store,
    digest,
    make_ca_and_server_cert,
    store_unavailable,
    system_store_env,
    wss_front,
)
from polyphone import protocol
from polyphone.engine import ice, net
from polyphone.engine.signaling import SignalingClient, SignalingOptions, make_ssl_context

pytestmark = pytest.mark.integration
TOKEN = "truststore-token-7c41a9"
@pytest.fixture
def tls_files(tmp_path):
    pytest.importorskip("cryptography")
    return make_ca_and_server_cert(tmp_path)


def test_the_tls_context_is_truststores_and_strict(tls_files) -> None:
    import truststore

    ca, _, _ = tls_files
    for ctx in (make_ssl_context(), make_ssl_context(str(ca))):
        assert isinstance(ctx, truststore.SSLContext)
        assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
        assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


async def test_a_ca_in_the_system_store_is_trusted_without_ca_file(
        gateway_factory, tls_files, tmp_path) -> None:
    why = store_unavailable()
    if why:
        pytest.fail(why)
    ca, cert, key = tls_files
    before = digest(BUNDLE)
    gw = await gateway_factory(tokens=[TOKEN])
    args = ("call", "--mode", "echo", "--json", "--duration", "0.5", "-v")
    async with wss_front(gw, cert, key) as (url, accepted):
        with ca_in_system_store(ca):
            rc, out, err = await run_polyphone(*args, "--url", url, tmp=tmp_path, token=TOKEN,
                                               base_env=system_store_env())
            assert rc == 0, err[-3000:]
            report = json.loads(out)
            assert report["result"] == "ended" and report["error"] is None, report
            assert accepted == [protocol.SIGNAL_PATH]
            # the ice-servers fetch went through the same trust store (in time, or late on a
            # busy machine: either way it got its answer over TLS)
            assert ("gateway offered 1 ICE server(s)" in err
                    or "(1 server(s)); ignored for this call" in err), err[-3000:]
        assert digest(BUNDLE) == before  # the store is as it was

        rc, out, err = await run_polyphone(*args, "--no-ice-fetch", "--url", url, tmp=tmp_path,
                                           token=TOKEN, base_env=system_store_env())
        error = json.loads(out)["error"]
        assert error["kind"] == "network", out
        assert "certificate" in error["message"] and "could not be verified" in error["message"]
        assert rc == 4, (out, err[-3000:])  # a network failure's exit code
        assert accepted == [protocol.SIGNAL_PATH]  # no second socket got through
    assert TOKEN not in out + err


# --- User-Agent ---------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []
    answer = b"{}"

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        type(self).seen.append({"path": self.path.split("?")[0], **dict(self.headers)})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def http_recorder(answer: object):
    handler = type("Recorder", (_Recorder,), {"seen": [], "answer": json.dumps(answer).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler.seen
    finally:
        server.shutdown()
        server.server_close()


async def test_the_ice_server_fetch_sends_the_user_agent_and_skips_bad_entries() -> None:
    answer = {"iceServers": [{"urls": "stun:127.0.0.1:9"}, "junk",
                             {"urls": ["turn:127.0.0.1:9?transport=tcp", "ftp://x"],
                              "username": "u", "credential": "turn-secret-55"}]}
    with http_recorder(answer) as (port, seen):
        servers, notes = await ice.fetch_gateway_servers(
            f"ws://127.0.0.1:{port}{protocol.SIGNAL_PATH}", TOKEN, timeout=5)
    assert [s.urls for s in servers] == [("stun:127.0.0.1:9",), ("turn:127.0.0.1:9?transport=tcp",)]
    assert "iceServers[1] skipped: not an object" in notes and "'ftp://x'" in notes
    assert "turn-secret-55" not in notes and TOKEN not in notes
    assert len(seen) == 1 and seen[0]["path"] == protocol.ICE_SERVERS_PATH
    assert seen[0]["User-Agent"] == net.user_agent()


async def test_the_websocket_upgrade_sends_the_user_agent() -> None:
    seen: list[str | None] = []

    def record(conn, request):
        seen.append(request.headers.get("User-Agent"))
        return None

    async def handler(ws) -> None:
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, process_request=record) as server:
        port = server.sockets[0].getsockname()[1]
        client = SignalingClient(f"ws://127.0.0.1:{port}{protocol.SIGNAL_PATH}")
        await client.connect()
        await client.close()
    assert seen == [net.user_agent()]


# --- proxies ----------------------------------------------------------------------------------


def make_named_cert(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """(CA, server certificate, key) for the DNS name `name` (make_ca_and_server_cert only
    covers 127.0.0.1 and localhost, which are never proxied)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    life = dict(not_valid_before=now - datetime.timedelta(minutes=5),
                not_valid_after=now + datetime.timedelta(days=1))
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Polyphone proxy test CA")])
    ca = (x509.CertificateBuilder(**life).subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder(**life)
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "proxy-ca.pem", folder / "named.pem", folder / "named.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@contextlib.asynccontextmanager
async def connect_proxy(target_port: int):
    """An HTTP CONNECT proxy on 127.0.0.1 that tunnels every request to 127.0.0.1:target_port
    (whatever name it asks for) and records the request lines and User-Agents."""
    seen: list[tuple[str, str | None]] = []

    async def pipe(reader, writer) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def handle(reader, writer) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        seen.append((head[0], headers.get("User-Agent")))
        if not head[0].startswith("CONNECT "):
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()


async def test_remote_hosts_go_through_the_https_proxy_and_loopback_never(
        gateway_factory, tmp_path, monkeypatch) -> None:
    pytest.importorskip("cryptography")
    name = "gateway.polyphone.test"  # never resolved: only the proxy is connected to
    ca, cert, key = make_named_cert(tmp_path, name)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    user_agents: list[str | None] = []

    def process_request(conn, request):
        user_agents.append(request.headers.get("User-Agent"))
        if request.path.startswith(protocol.ICE_SERVERS_PATH):
            return conn.respond(200, json.dumps({"iceServers": [{"urls": "stun:127.0.0.1:9"}]}))
        return None

    async def handler(ws) -> None:
        await ws.wait_closed()

    for var in ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "wss_proxy", "ws_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    gw = await gateway_factory(tokens=[TOKEN])
    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx, process_request=process_request) as tls:
        async with connect_proxy(tls.sockets[0].getsockname()[1]) as (proxy_port, seen):
            monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy_port}")
            remote = f"wss://{name}{protocol.SIGNAL_PATH}"
            assert net.proxy_for(remote) == f"http://127.0.0.1:{proxy_port}"

            client = SignalingClient(remote, SignalingOptions(ca_file=str(ca), connect_timeout=10))
            await client.connect()
            await client.close()
            servers, why = await ice.fetch_gateway_servers(remote, TOKEN, timeout=5, ca_file=str(ca))
            assert why == "" and [s.urls for s in servers] == [("stun:127.0.0.1:9",)]
            assert [line.rsplit(" ", 1)[0] for line, _ in seen] == [f"CONNECT {name}:443"] * 2
            assert user_agents == [net.user_agent(), net.user_agent()]

            # the gateway's certificate is still checked against its name, through the tunnel
            servers, why = await ice.fetch_gateway_servers(remote, TOKEN, timeout=5)
            assert servers is None and "CERTIFICATE_VERIFY_FAILED" in why.upper().replace(" ", "_")

            # loopback: straight to the local gateway, never the proxy
            before = len(seen)
            client = SignalingClient(gw.url, SignalingOptions(connect_timeout=10))
            await client.connect()
            await client.close()
            servers, why = await ice.fetch_gateway_servers(gw.url, TOKEN, timeout=5)
            assert servers is not None, why
            assert len(seen) == before
