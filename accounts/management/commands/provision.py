"""`python manage.py provision spec.json` (or `-` for stdin). See README "Provisioning"."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services.provisioning import SpecError, provision


class Command(BaseCommand):
    help = "Create or update an organization, its owner, contract, projects and environments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("spec", help="path to a JSON spec, or - for standard input")

    def handle(self, *args: Any, spec: str, **options: Any) -> None:
        try:
            text = sys.stdin.read() if spec == "-" else Path(spec).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {spec}: {exc.strerror}") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{spec} is not valid JSON: {exc}") from exc
        try:
            result = provision(document)
        except SpecError as exc:
            raise CommandError("invalid spec:\n  " + "\n  ".join(exc.errors)) from exc
        self.stdout.write(json.dumps(result, indent=2))
