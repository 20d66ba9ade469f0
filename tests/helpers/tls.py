"""TLS with real parts for tests: a private CA and server certificate made here, a wss://
front for the real local gateway, and the system trust store (a CA put in and taken out)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import subprocess
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from polyphone import protocol
from polyphone.localgw import LocalGateway


def make_ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Polyphone test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@contextlib.asynccontextmanager
async def wss_front(gateway: LocalGateway, cert: Path, key: Path):
    """A wss:// server on 127.0.0.1 relaying every frame to and from the gateway's ws:// URL.

    It also answers `GET /api/v1/ice-servers` itself (one STUN server), over the same TLS.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    accepted: list[str] = []

    def process_request(conn, request):
        if request.path.startswith(protocol.ICE_SERVERS_PATH):
            return conn.respond(200, json.dumps({"iceServers": [{"urls": "stun:127.0.0.1:9"}]}))
        return None

    async def relay(client) -> None:
        accepted.append(client.request.path)
        async with connect(gateway.url) as upstream:
            async def pump(src, dst) -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for frame in src:
                        await dst.send(frame)
            tasks = [asyncio.ensure_future(pump(client, upstream)),
                     asyncio.ensure_future(pump(upstream, client))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()

    async with serve(relay, "127.0.0.1", 0, ssl=ctx, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"wss://127.0.0.1:{port}{protocol.SIGNAL_PATH}", accepted



STORE_DIR = Path("/usr/local/share/ca-certificates")
BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TRUST_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT")


def store_unavailable() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "installing a CA in the system trust store needs root"
    if shutil.which("update-ca-certificates") is None or not STORE_DIR.is_dir():
        return "no update-ca-certificates (Debian's ca-certificates package)"
    return None


def _update_store(*args: str) -> None:
    out = subprocess.run(["update-ca-certificates", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


@contextlib.contextmanager
def ca_in_system_store(ca: Path):
    """The CA trusted by the OS while inside; afterwards the store is rebuilt without it."""
    dest = STORE_DIR / f"polyphone-test-{secrets.token_hex(6)}.crt"
    shutil.copyfile(ca, dest)
    try:
        _update_store()
        yield dest
    finally:
        dest.unlink(missing_ok=True)
        _update_store("--fresh")


def system_store_env() -> dict[str, str]:
    """This environment without the variables that point OpenSSL or tools at a CA file."""
    env = dict(os.environ)
    for name in TRUST_ENV:
        env.pop(name, None)
    return env


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""
