"""PostgreSQL restarted, and killed with `kill -9`, while the fleet simulator pushes usage
over HTTP: clients are told 503 + Retry-After while it is down, the simulator's retries
succeed, and the totals in the database are exactly what the fleet's plan says."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Callable

import httpx
import pytest

from tests.faults.stack import Postgres, app_env, provision, web
from tests.processes import wait_until
from tools.fleet.plan import FleetSpec, build_plan
from tools.fleet.run import FleetReport, print_report, run_fleet
from tools.fleet.transport import HttpTransport

pytestmark = pytest.mark.slow

ORG_READINGS = (
    "SELECT count(*) FROM metering_usagereading r "
    "JOIN accounts_environment e ON e.id = r.environment_id "
    "JOIN accounts_project p ON p.id = e.project_id "
    "JOIN accounts_organization o ON o.id = p.organization_id WHERE o.slug = %s"
)
ORG_COUNTED = ORG_READINGS.replace("count(*)", "COALESCE(SUM(r.counted_api_calls), 0)")
ORG_ROLLUP = (
    "SELECT COALESCE(SUM(u.total), 0) FROM metering_usagerollup u "
    "JOIN accounts_environment e ON e.id = u.environment_id "
    "JOIN accounts_project p ON p.id = e.project_id "
    "JOIN accounts_organization o ON o.id = p.organization_id "
    "WHERE o.slug = %s AND u.metric = 'api_calls'"
)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["code"] == "unavailable"


def fleet_through(pg: Postgres, fault: Callable[[], None], run_id: str) -> None:
    env = app_env(pg, None)
    environments = provision(env, count=3, run_id=run_id)
    org = f"fleet-{run_id}"
    spec = FleetSpec(
        environments=3,
        instances=4,
        minutes=120,
        seed=15,
        run_id=run_id,
        end=dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=5),
        lanes=6,
    )
    plan = build_plan(spec)
    with web(env) as base:
        transport = HttpTransport(base, timeout=30)
        reports: list[FleetReport] = []
        sender = threading.Thread(
            target=lambda: reports.append(
                run_fleet(transport=transport, environments=environments, spec=spec, plan=plan)
            ),
        )
        sender.start()
        try:
            # Mid-ingest: a share of the readings is in, most are still to come.
            wait_until(lambda: pg.scalar(ORG_READINGS, (org,)) >= 100, timeout=60, every=0.05)
            fault()
            key = environments[0].key
            auth = {"Authorization": f"Bearer {key}"}
            reading = {"instance": "probe", "boot": "p", "api_calls": 7}
            assert_unavailable(httpx.post(f"{base}/api/v1/usage", json=reading, headers=auth))
            assert_unavailable(httpx.get(f"{base}/api/v1/usage", headers=auth))
            pg.start()
        finally:
            sender.join(timeout=180)
            transport.close()
    assert reports, "the fleet did not finish"
    report = reports[0]
    printed = _printed(report)
    assert report.ok, printed
    assert report.main.retries + report.final.retries > 0, printed  # the fault hit the fleet
    assert report.server_total == report.expected_total
    # What the database holds: the raw readings and the rollups agree with the plan.
    assert pg.scalar(ORG_COUNTED, (org,)) == report.expected_total
    assert pg.scalar(ORG_ROLLUP, (org,)) == report.expected_total


def _printed(report: FleetReport) -> str:
    out = io.StringIO()
    print_report(report, out)
    return out.getvalue()


def test_a_restart_during_ingest_loses_nothing_and_counts_nothing_twice(pg):
    fleet_through(pg, pg.stop, run_id="restart")


def test_a_killed_postmaster_during_ingest_loses_nothing_and_counts_nothing_twice(pg):
    fleet_through(pg, pg.kill, run_id="kill9")
