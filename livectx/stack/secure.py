"""The secured local stack's key material: a CA, the broker's certificate, and the platform's passwords.

Generated once per state dir (``<state dir>/secure``, mode 0700; every file 0600) with the ``cryptography``
package, and reused by every later ``stack up``. The CA signs one certificate, ``CN=livectx-broker`` with
SAN ``127.0.0.1``/``localhost``, which the broker serves on its SASL_SSL listener and presents as a client
on its controller listener (mutual TLS: the controller listener accepts no one without a CA-signed
certificate, since SCRAM cannot authenticate there). Passwords are 32 random bytes each, in
``passwords.json``, read by :mod:`livectx.settings` to configure the local clients; they are never
printed (``livectx config`` masks them) and never passed on a command line, except the broker's own
SCRAM bootstrap credential during the one-off ``kafka-storage format``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from livectx.errors import ServiceError
from livectx.settings import Settings

BROKER_CN = "livectx-broker"
#: The platform super-user (Kafka), the Redis ACL user and the Postgres role of the local clients.
KAFKA_ADMIN = "admin"
REDIS_USER = "livectx"
POSTGRES_USER = "livectx"
PASSWORDS = "passwords.json"


@dataclass(frozen=True)
class SecureMaterial:
    """Paths of the secured stack's files; :meth:`ensure` creates what is missing."""

    home: Path

    @classmethod
    def of(cls, settings: Settings) -> SecureMaterial:
        return cls(settings.stack.state_dir / "secure")

    @property
    def ca(self) -> Path:
        return self.home / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.home / "ca-key.pem"

    @property
    def broker_keystore(self) -> Path:
        """The broker's private key (PKCS#8) and certificate chain in one PEM file, as Kafka's PEM keystore."""
        return self.home / "broker.pem"

    @property
    def passwords_file(self) -> Path:
        return self.home / PASSWORDS

    def exists(self) -> bool:
        return self.passwords_file.is_file()

    def ensure(self) -> SecureMaterial:
        """Create the CA, the broker certificate and the passwords once (0600 files in a 0700 folder)."""
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.home, 0o700)
        if not (self.ca.is_file() and self.broker_keystore.is_file()):
            _write_certificates(self)
        if not self.passwords_file.is_file():
            generated = {name: secrets.token_urlsafe(32) for name in ("kafka_admin", "redis", "postgres")}
            _write_private(self.passwords_file, json.dumps(generated, indent=2))
        return self

    def password(self, name: str) -> str:
        """``kafka_admin``, ``redis`` or ``postgres``."""
        try:
            return str(json.loads(self.passwords_file.read_text())[name])
        except (OSError, KeyError, ValueError):
            raise ServiceError(f"the secured stack's {name} password is missing from {self.passwords_file}") from None


def _write_certificates(material: SecureMaterial) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "livectx local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    plain = serialization.NoEncryption()
    _write_private(material.ca_key, ca_key.private_bytes(pem, pkcs8, plain).decode())
    _write_private(material.ca, ca_cert.public_bytes(pem).decode())
    _write_private(
        material.broker_keystore,
        key.private_bytes(pem, pkcs8, plain).decode()
        + cert.public_bytes(pem).decode()
        + ca_cert.public_bytes(pem).decode(),
    )


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only, atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def check_mode(settings: Settings, formatted: bool) -> None:
    """Refuse to start a state dir in the other mode than it was created in (one readable line)."""
    material = SecureMaterial.of(settings)
    if settings.stack.secure and formatted and not material.exists():
        raise ServiceError(
            f"the state dir {settings.stack.state_dir} holds a plain stack: `livectx stack down --purge` first, "
            "or give the secured stack its own LIVECTX_STACK_STATE_DIR"
        )
    if not settings.stack.secure and material.exists():
        raise ServiceError(
            f"the state dir {settings.stack.state_dir} holds a secured stack: set LIVECTX_STACK_SECURE=1 "
            "(or `stack up --secure`), or use another LIVECTX_STACK_STATE_DIR"
        )
