"""The site's signing credential: a certificate chain and its private key.

A fresh install makes its own (`make_self_signed`): a small CA certificate and a signing
certificate it issues, because C2PA refuses to sign with a CA certificate or a bare self-signed
one. The CA's key is thrown away once it has signed: nothing else is ever issued under it.
Public verifiers show such a signer as "unrecognized"; an operator who wants a recognized one
configures a certificate from a CA on the C2PA trust list instead (`credential_from_pem`).

`Keyring` keeps credentials in a directory, one folder each, the newest current. Rotating makes
a new one and deletes the old private key but keeps its certificates: pictures signed before
carry their own chain and still validate, and the archive still recognizes them as its own.
"""

from __future__ import annotations

import datetime
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID_FOR = datetime.timedelta(days=10 * 365)


class CredentialError(ValueError):
    """A certificate or key that cannot sign (unreadable, mismatched, unsupported)."""


@dataclass(frozen=True)
class SigningCredential:
    chain_pem: bytes  # the signing certificate first, then its issuers
    key_pem: bytes  # PKCS#8 PEM, unencrypted (the file is 0600)

    @property
    def certificates(self) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates(self.chain_pem)

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def fingerprint(self) -> str:
        """sha256 of the signing certificate (DER), hex."""
        return self.leaf.fingerprint(hashes.SHA256()).hex()

    @property
    def serial_number(self) -> str:
        """The signing certificate's serial as C2PA readers print it (decimal)."""
        return str(self.leaf.serial_number)

    @property
    def anchor_pem(self) -> str:
        """The chain's last certificate: what a reader trusts to recognize this signer."""
        return self.certificates[-1].public_bytes(serialization.Encoding.PEM).decode()

    @property
    def subject(self) -> str:
        return self.leaf.subject.rfc4514_string()

    @property
    def algorithm(self) -> str:
        """The C2PA signing algorithm name for the key."""
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            algorithms = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
            if key.curve.name not in algorithms:
                raise CredentialError(f"C2PA cannot sign with the curve {key.curve.name}")
            return algorithms[key.curve.name]
        if isinstance(key, rsa.RSAPrivateKey):
            return "ps256"
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return "ed25519"
        raise CredentialError(f"C2PA cannot sign with a {type(key).__name__}")


def credential_from_pem(chain_pem: bytes, key_pem: bytes) -> SigningCredential:
    """A credential from PEM text (an operator's), checked: the key belongs to the first
    certificate, which must not be a CA (C2PA refuses to sign with one)."""
    try:
        certificates = x509.load_pem_x509_certificates(chain_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except ValueError as error:
        raise CredentialError(f"cannot read the signing certificate or key: {error}") from None
    public = (
        certificates[0]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    own = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public != own:
        raise CredentialError("the private key does not belong to the first certificate")
    try:
        constraints = certificates[0].extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        pass
    else:
        if constraints.value.ca:
            raise CredentialError("the first certificate is a CA: C2PA signs with an end entity")
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    credential = SigningCredential(chain_pem=chain_pem, key_pem=pkcs8)
    credential.algorithm  # noqa: B018 — raises for a key C2PA cannot use
    return credential


def make_self_signed(site_name: str, *, now: datetime.datetime | None = None) -> SigningCredential:
    """A new CA and a signing certificate it issues (EC P-256, ES256), both naming the site."""
    now = now or datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    signer_key = ec.generate_private_key(ec.SECP256R1())
    organization = x509.NameAttribute(NameOID.ORGANIZATION_NAME, site_name)
    stamp = now.strftime("%Y-%m-%d")
    ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"{site_name} signing CA {stamp}"), organization]
    )
    signer_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"{site_name} Content Credentials"), organization]
    )
    ca = (
        _certificate(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    signer = (
        _certificate(signer_name, ca_name, signer_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        # C2PA's profile wants an extended key usage; emailProtection is one it accepts.
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (signer, ca))
    key_pem = signer_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningCredential(chain_pem=chain, key_pem=key_pem)


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + _VALID_FOR)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class Keyring:
    """Credentials in `directory`: one folder per credential (named by its creation time, so
    they sort oldest first) holding `chain.pem` and, while it is current, `key.pem` (0600)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def current(self) -> SigningCredential | None:
        for folder in reversed(self._folders()):
            key = folder / "key.pem"
            if key.is_file():
                return SigningCredential((folder / "chain.pem").read_bytes(), key.read_bytes())
        return None

    def current_name(self) -> str | None:
        """The current credential's folder name: a directory listing and a few stats, cheap
        enough to ask before every signing (a rotation changes it)."""
        for folder in reversed(self._folders()):
            if (folder / "key.pem").is_file():
                return folder.name
        return None

    def load(self, name: str) -> SigningCredential:
        """The credential in folder `name` (FileNotFoundError once rotated out)."""
        folder = self.directory / name
        return SigningCredential(
            (folder / "chain.pem").read_bytes(), (folder / "key.pem").read_bytes()
        )

    def listing(self) -> list[tuple[str, bytes, bool]]:
        """(folder name, chain, whether its private key is still there), oldest first."""
        return [
            (folder.name, (folder / "chain.pem").read_bytes(), (folder / "key.pem").is_file())
            for folder in self._folders()
        ]

    def ensure(self, site_name: str) -> SigningCredential:
        """The current credential, made first if there is none (once, whichever process asks
        first)."""
        found = self.current()
        if found is not None:
            return found
        with self._locked():
            return self.current() or self._add(make_self_signed(site_name))

    def rotate(self, site_name: str) -> SigningCredential:
        """A new current credential; the old private keys are deleted, their certificates kept."""
        with self._locked():
            new = self._add(make_self_signed(site_name))
            for folder in self._folders():
                key = folder / "key.pem"
                if key.is_file() and (folder / "chain.pem").read_bytes() != new.chain_pem:
                    key.unlink()
            return new

    def chains(self) -> list[bytes]:
        """Every credential's certificate chain, current and retired."""
        return [(folder / "chain.pem").read_bytes() for folder in self._folders()]

    def _folders(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(f for f in self.directory.iterdir() if (f / "chain.pem").is_file())

    def _add(self, credential: SigningCredential) -> SigningCredential:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        staging = self.directory / f".{stamp}"
        staging.mkdir(mode=0o700)
        (staging / "chain.pem").write_bytes(credential.chain_pem)
        descriptor = os.open(staging / "key.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(credential.key_pem)
        staging.rename(self.directory / stamp)  # whole or not at all
        return credential

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


__all__ = [
    "CredentialError",
    "Keyring",
    "SigningCredential",
    "credential_from_pem",
    "make_self_signed",
]
