"""A little simulated usage history for the demo data, pushed through the real ingest
endpoints in-process (the demo runs before any server does)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from tools.fleet.plan import FleetSpec, build_plan
from tools.fleet.run import FleetEnvironment, FleetError, fetch_totals, run_fleet, totals_window
from tools.fleet.transport import InProcessTransport, Transport

DEMO_RATES = (5, 40, 150, 400)  # calls per instance per 15 minutes


@dataclass(frozen=True)
class DemoUsage:
    pushed: dict[str, int]  # label -> API calls counted by this run
    skipped: list[str]  # environments that already had usage
    problems: list[str]


def demo_usage(
    *,
    keys: Mapping[str, str],
    hours: int = 48,
    instances: int = 3,
    seed: int = 2026,
    transport: Transport | None = None,
    end: dt.datetime | None = None,
) -> DemoUsage:
    """Push `hours` of 15-minute readings per environment (restarts, duplicates, late
    readings, seats and tenants included) for environments that have no usage yet in
    that window, so loading the demo twice does not double its history."""
    transport = transport or InProcessTransport()
    end = end or dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    steps = hours * 4
    pushed: dict[str, int] = {}
    skipped: list[str] = []
    problems: list[str] = []
    for n, (label, key) in enumerate(sorted(keys.items())):
        spec = FleetSpec(
            environments=1,
            instances=instances,
            minutes=steps,
            interval_seconds=15 * 60,
            seed=seed + n,
            end=end,
            run_id="demo",
            lanes=1,
            batch=True,
            batch_size=200,
            rates=DEMO_RATES,
            seats_range=(2, 9),  # the demo contract allows 10 seats and 3 tenants
            tenants_range=(1, 3),
        )
        plan = build_plan(spec)
        try:
            if fetch_totals(transport, key, totals_window(plan)).api_calls > 0:
                skipped.append(label)
                continue
            report = run_fleet(
                transport=transport,
                environments=[FleetEnvironment(label, key)],
                spec=spec,
                plan=plan,
            )
        except FleetError as exc:
            problems.append(f"{label}: {exc}")
            continue
        problems += [f"{label}: {p}" for c in report.checks for p in c.problems]
        problems += [f"{label}: {e}" for e in report.errors]
        pushed[label] = report.server_total
    return DemoUsage(pushed=pushed, skipped=skipped, problems=problems)
