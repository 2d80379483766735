"""`python manage.py simulate_fleet --url URL ...`: push a simulated fleet's usage over HTTP
and check the server's totals; exits 1 on any difference or error. See docs/fleet.md."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tools.fleet.plan import MAX_BATCH, FleetSpec, build_plan
from tools.fleet.run import (
    FleetError,
    load_keys,
    new_run_id,
    print_report,
    provision_environments,
    run_fleet,
    save_keys,
)
from tools.fleet.transport import HttpTransport


class Command(BaseCommand):
    help = (
        "Simulate a fleet of CMS instances pushing usage (restarts, duplicates, late and "
        "out-of-order readings, heartbeats, seat and tenant changes) and check the totals."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", help="base URL of the Control Panel, e.g. http://127.0.0.1:8000"
        )
        parser.add_argument("--environments", type=int, default=4)
        parser.add_argument("--instances", type=int, default=3, help="per environment")
        parser.add_argument(
            "--minutes",
            type=int,
            default=60,
            help="simulated minutes (one reading per instance each)",
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--run-id", help="part of instance names and boots (default: random)")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--batch", dest="batch", action="store_true", help="POST /api/v1/usage/batch"
        )
        mode.add_argument(
            "--single", dest="batch", action="store_false", help="POST /api/v1/usage (default)"
        )
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument("--concurrency", type=int, default=8, help="parallel clients")
        parser.add_argument("--keys-file", type=Path, help="JSON {label: key} or [key, ...]")
        parser.add_argument(
            "--provision",
            action="store_true",
            help="create --environments fresh environments in this process's database "
            "(written to --keys-file if given); without --url, only provision",
        )
        parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")

    def handle(self, *args: Any, **o: Any) -> None:
        if o["environments"] < 1 or o["instances"] < 1 or o["minutes"] < 1 or o["concurrency"] < 1:
            raise CommandError(
                "--environments, --instances, --minutes and --concurrency must be >= 1"
            )
        if not 1 <= o["batch_size"] <= MAX_BATCH:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH}")
        run_id = o["run_id"] or new_run_id()
        try:
            if o["provision"]:
                environments = provision_environments(count=o["environments"], run_id=run_id)
                if o["keys_file"]:
                    save_keys(o["keys_file"], environments)
                self.stdout.write(f"provisioned {len(environments)} environments (fleet-{run_id})")
                if not o["url"]:
                    return
            elif o["keys_file"]:
                environments = load_keys(o["keys_file"])
            else:
                raise CommandError("give --keys-file, or --provision to create environments")
            if not o["url"]:
                raise CommandError("--url is required to send traffic")
            if len(environments) < o["environments"]:
                raise CommandError(
                    f"--environments {o['environments']} but only {len(environments)} keys"
                )
            spec = FleetSpec(
                environments=o["environments"],
                instances=o["instances"],
                minutes=o["minutes"],
                seed=o["seed"],
                run_id=run_id,
                end=dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=5),
                lanes=o["concurrency"],
                batch=o["batch"],
                batch_size=o["batch_size"],
            )
            transport = HttpTransport(o["url"], timeout=o["timeout"])
            try:
                report = run_fleet(
                    transport=transport, environments=environments, spec=spec, plan=build_plan(spec)
                )
            finally:
                transport.close()
        except (FleetError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        print_report(report, self.stdout)
        if not report.ok:
            raise CommandError(
                "the server's totals differ from the expected ones, or requests failed"
            )
