"""Test certificates: a CA, a server certificate for IP 127.0.0.1 and a client
certificate, made with the ``cryptography`` package (PEM, PKCS#8 keys, which
ZooKeeper's PEM key store reads)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

NETTY_JARS = [f"/usr/share/java/{name}.jar" for name in
              ("netty-codec", "netty-resolver", "netty-transport-native-unix-common")]


@dataclass(frozen=True)
class Certs:
    ca: str  # the CA certificate (trust store of both sides)
    server_pem: str  # server key + certificate, ZooKeeper's key store
    client_cert: str
    client_key: str
    other_ca: str  # a CA that signed nothing here


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: rsa.RSAPrivateKey, issuer: str, signer: rsa.RSAPrivateKey,
          *, ca: bool, ip: str | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject)).issuer_name(_name(issuer))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_certs(folder: Path) -> Certs:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, other_key, server_key, client_key = _key(), _key(), _key(), _key()
    ca = _cert("zkflock-test-ca", ca_key, "zkflock-test-ca", ca_key, ca=True)
    other = _cert("another-ca", other_key, "another-ca", other_key, ca=True)
    server = _cert("127.0.0.1", server_key, "zkflock-test-ca", ca_key, ca=False, ip="127.0.0.1")
    client = _cert("zkflock-client", client_key, "zkflock-test-ca", ca_key, ca=False)
    files = {
        "ca.pem": _pem_cert(ca),
        "other-ca.pem": _pem_cert(other),
        "server.pem": _pem_key(server_key) + _pem_cert(server),
        "client.crt": _pem_cert(client),
        "client.key": _pem_key(client_key),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "client.key").chmod(0o600)
    return Certs(*(str(folder / n) for n in ("ca.pem", "server.pem", "client.crt",
                                              "client.key", "other-ca.pem")))


def tls_server_config(certs: Certs) -> dict[str, str | None]:
    """extra_config for a TLS-only LocalZooKeeper (see ZOOKEEPER.md)."""
    return {
        "clientPort": None,
        "secureClientPort": "auto",
        "secureClientPortAddress": "127.0.0.1",
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "ssl.keyStore.location": certs.server_pem, "ssl.keyStore.type": "PEM",
        "ssl.trustStore.location": certs.ca, "ssl.trustStore.type": "PEM",
    }
