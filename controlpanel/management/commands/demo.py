from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlpanel.demo import DEMO_HOURS, load_demo


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print the demo logins and API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="allow without DEBUG")
        parser.add_argument(
            "--url",
            default="",
            help="the address the site is served at, for the start line "
            "(default: PUBLIC_URL, else http://127.0.0.1:8000)",
        )

    def handle(self, *args: Any, force: bool, url: str, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("demo data has well-known passwords: run with DEBUG=1 or --force")
        demo = load_demo()
        self.stdout.write("Demo logins (email / password):")
        for role, (email, password) in demo["logins"].items():
            self.stdout.write(f"  {role:9} {email} / {password}")
        self.stdout.write("Demo API keys (environment: key):")
        for name, key in sorted(demo["api_keys"].items()):
            self.stdout.write(f"  {name}: {key}")
        usage = demo["usage"]
        for name, calls in sorted(usage.pushed.items()):
            self.stdout.write(
                f"Demo usage: {name}: {DEMO_HOURS} hours simulated, {calls} API calls"
            )
        for name in usage.skipped:
            self.stdout.write(f"Demo usage: {name}: already has usage, left as is")
        for problem in usage.problems:
            self.stderr.write(f"Demo usage not loaded: {problem}")
        email, password = demo["logins"]["owner"]
        base = (url or settings.PUBLIC_URL or "http://127.0.0.1:8000").rstrip("/")
        self.stdout.write(
            self.style.SUCCESS(
                f"Start here: {base}/ and sign in as {email} / {password} "
                f"(the dashboard of {demo['organization']}); staff: {base}/admin/"
            )
        )
