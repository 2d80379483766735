"""Manage license signing keys: `list`, `rotate [--out FILE|-]`, `retire KID [--withdraw]`."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.licensing import keys, services
from accounts.licensing.selectors.published import signing_keys_all, signing_keys_published


class Command(BaseCommand):
    help = "List, rotate and retire the Ed25519 keys that sign licenses."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="Every key: kid, status, dates, whether published.")
        rotate = sub.add_parser(
            "rotate",
            help="Generate a new key that signs new licenses; the old one is retired and "
            "keeps verifying the licenses it signed until they expire.",
        )
        rotate.add_argument(
            "--out",
            help="Where to write the new private key (a new file, mode 0600, or - for "
            "stdout). Required when the key comes from LICENSE_SIGNING_KEY; by default the "
            "key file in use (embedded or LICENSE_SIGNING_KEY_FILE) is replaced.",
        )
        retire = sub.add_parser("retire", help="Retire a key that is not the active one.")
        # A kid is base64url and may start with "-": write `retire -- -Ab3...` then.
        retire.add_argument(
            "kid", help="Key id from `list` (precede it with -- if it starts with -)."
        )
        retire.add_argument(
            "--withdraw",
            action="store_true",
            help="Compromised key: stop publishing it now; its licenses stop verifying.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except (services.KeyCommandError, keys.KeyConfigurationError) as exc:
            raise CommandError(str(exc)) from exc

    def _list(self, options: dict[str, Any]) -> None:
        published = {key.pk for key in signing_keys_published()}
        try:
            configured = keys.signing_keypair(generate_missing=False).kid
        except keys.KeyConfigurationError as exc:
            configured = None
            self.stderr.write(f"configured key unusable: {exc}")
        rows = signing_keys_all()
        if not rows:
            self.stdout.write("no signing keys yet (one is registered at the first license)")
        for key in rows:
            flags = [
                "published" if key.pk in published else "unpublished",
                *(["configured here"] if key.kid == configured else []),
                *(["withdrawn"] if key.withdrawn_at else []),
            ]
            line = f"{key.kid}  {key.status:<8} created {key.created_at:%Y-%m-%d %H:%M}"
            if key.retired_at:
                line += f"  retired {key.retired_at:%Y-%m-%d %H:%M}"
            self.stdout.write(f"{line}  [{', '.join(flags)}]")

    def _rotate(self, options: dict[str, Any]) -> None:
        source = keys.key_source()
        rotation = services.signing_key_rotate(out=options.get("out"))
        if rotation.private_pem is not None:
            sys.stdout.write(rotation.private_pem.decode())
            sys.stdout.flush()
            self.stderr.write(f"new active key {rotation.key.kid}: private key written to stdout")
        else:
            self.stdout.write(
                f"new active key {rotation.key.kid}: private key in {rotation.written_to}"
            )
        if source.kind == "env" or (options.get("out") and rotation.written_to != str(source.path)):
            self.stderr.write(
                "Put the new private key where the processes read it (LICENSE_SIGNING_KEY or "
                "LICENSE_SIGNING_KEY_FILE) and redeploy. Until then they sign with the "
                "previous key, which stays published while its licenses are valid."
            )

    def _retire(self, options: dict[str, Any]) -> None:
        key = services.signing_key_retire(kid=options["kid"], withdraw=options["withdraw"])
        state = "withdrawn (unpublished now)" if key.withdrawn_at else "retired"
        self.stdout.write(f"{key.kid} {state}")
