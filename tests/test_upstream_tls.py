"""Upstreams over https, as every real provider is: the gateway's upstream client
(`providers.client`) speaks TLS to a fake Chat Completions server on 127.0.0.1 whose certificate
a test CA signed, verifies it (a gateway that does not trust the CA cannot call it), and keeps
the connection alive between calls."""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
from conftest import sdk
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fake_chat import FakeChat
from gateway import Gateway
from helpers import assert_envelope, create, post_raw, stream


def _certificates(folder) -> tuple[str, ssl.SSLContext]:  # noqa: ANN001
    """A test CA's certificate file, and a server context with a certificate it signed for
    127.0.0.1."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rejoinder test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return str(folder / "ca.pem"), context


@pytest.fixture(scope="module")
def tls_upstream(tmp_path_factory):
    ca, context = _certificates(tmp_path_factory.mktemp("tls"))
    fake = FakeChat(tls=context)
    fake.start()
    yield fake, ca
    fake.stop()


def _gateway(fake: FakeChat, folder, env: dict[str, str]) -> Gateway:  # noqa: ANN001
    model = {"name": "mock-*", "provider": "openai-chat", "base_url": fake.url + "/v1", "api_key": "sk-tls-test-key"}
    return Gateway({"models": [model], "database_url": f"sqlite:///{folder}/r.db"}, folder, env=env).start()


def test_an_https_upstream_is_called_and_verified(tls_upstream, tmp_path):
    fake, ca = tls_upstream
    assert fake.url.startswith("https://")
    gw = _gateway(fake, tmp_path, {"SSL_CERT_FILE": ca})  # OpenSSL's default trust store: the test CA
    try:
        client = sdk(gw)
        body = create(client, model="mock-text", input="Hi")
        assert body["output"][0]["content"][0]["text"] == "Hello, world!"
        events = stream(client, model="mock-text", input="Hi")
        assert events[-1]["type"] == "response.completed"
        assert fake.headers[-1]["Authorization"] == "Bearer sk-tls-test-key"
    finally:
        gw.stop()


def test_an_upstream_certificate_no_trusted_ca_signed_is_refused(tls_upstream, tmp_path):
    fake, _ = tls_upstream
    calls = len(fake.requests)
    gw = _gateway(fake, tmp_path, {})
    try:
        status, _, payload = post_raw(gw, "POST", "/v1/responses", b'{"model": "mock-text", "input": "Hi"}')
        assert status == 502, payload
        assert_envelope(payload, code="upstream_unreachable")
        assert len(fake.requests) == calls  # nothing was sent
    finally:
        gw.stop()
