"""The site's Content Credentials signer: show it, or rotate the site's own (docs/deploying.md,
"Content Credentials (signing)")."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.services.signing import (
    site_credential,
    site_credential_is_operators,
    site_credential_rotate,
    site_keyring,
)


class Command(BaseCommand):
    help = "Show the certificate that signs stored pictures, or rotate the site's own."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("show", help="the current signer and the retired ones")
        actions.add_parser(
            "rotate",
            help="a new self-signed credential; the old private key is deleted, its chain kept",
        )

    def handle(self, *args: object, action: str, **options: Any) -> None:
        try:
            if action == "rotate":
                before = site_credential()
                after = site_credential_rotate()
                self.stdout.write(
                    f"Rotated: new pictures are signed by {after.fingerprint} "
                    f"(was {before.fingerprint}, whose private key is deleted; its chain is "
                    "kept, so pictures signed with it still validate)."
                )
                return
            current = site_credential()
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        if site_credential_is_operators():
            origin = (
                f"operator-provided ({settings.SEEDBANK_SIGNING_CERT}, "
                f"{settings.SEEDBANK_SIGNING_KEY})"
            )
        else:
            origin = f"self-signed by this site ({site_keyring().directory})"
        self.stdout.write(f"Current signer: {origin}")
        self._describe(current.leaf, current.algorithm)
        # With the operator's certificate in use, every credential of the site's own is retired.
        operators = site_credential_is_operators()
        retired = [(name, chain) for name, chain, key in site_keyring().listing()
                   if operators or not key]  # fmt: skip
        self.stdout.write(f"Retired chains: {len(retired)}")
        for name, chain in retired:
            self.stdout.write(f"- {name}")
            self._describe(x509.load_pem_x509_certificates(chain)[0], "")

    def _describe(self, leaf: x509.Certificate, algorithm: str) -> None:
        lines = {
            "subject": leaf.subject.rfc4514_string(),
            "issuer": leaf.issuer.rfc4514_string(),
            "sha256 fingerprint": leaf.fingerprint(hashes.SHA256()).hex(),
            "serial": str(leaf.serial_number),
            "valid": f"{leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}",
        }
        if algorithm:
            lines["algorithm"] = algorithm
        for label, value in lines.items():
            self.stdout.write(f"  {label}: {value}")
