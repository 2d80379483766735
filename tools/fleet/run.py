"""Run a planned fleet against a server and check the server's totals.

1. read each environment's totals over the plan's window first (the baseline: a reused
   environment may have history; fresh series make the run's own share exact);
2. send every lane at once, then the final heartbeats;
3. read the totals again and compare, per environment and overall, the server's
   increase with what the counting rules say the plan must add.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

from tools.fleet.plan import EnvTotals, FleetSpec, GaugeTotals, Plan, build_plan
from tools.fleet.transport import USAGE_PATH, SendStats, Transport, send_lanes


class FleetError(Exception):
    """The run could not be made (bad keys file, server unreachable for totals...)."""


@dataclass(frozen=True)
class FleetEnvironment:
    label: str
    key: str


@dataclass
class EnvCheck:
    label: str
    expected: EnvTotals
    server: EnvTotals | None  # the server's increase over the baseline (gauges: as read)
    problems: list[str] = field(default_factory=list)


@dataclass
class FleetReport:
    plan: Plan
    main: SendStats
    final: SendStats
    checks: list[EnvCheck]
    errors: list[str]

    @property
    def said_counted(self) -> int:
        return self.main.counted + self.final.counted

    @property
    def ok(self) -> bool:
        # Without retries, what the responses said they counted must add up as well.
        said_ok = (
            self.main.retries + self.final.retries > 0 or self.said_counted == self.expected_total
        )
        return said_ok and not self.errors and all(not c.problems for c in self.checks)

    @property
    def expected_total(self) -> int:
        return self.plan.expected_overall()

    @property
    def server_total(self) -> int:
        return sum(c.server.api_calls for c in self.checks if c.server is not None)


def new_run_id() -> str:
    return secrets.token_hex(4)


# --- environments and keys --------------------------------------------------------------
def load_keys(path: Path) -> list[FleetEnvironment]:
    """A JSON object `{label: key}` (the demo's demo-keys.json) or a list of keys."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FleetError(f"cannot read keys from {path}: {exc}") from exc
    if isinstance(doc, dict):
        envs = [FleetEnvironment(str(k), str(v)) for k, v in doc.items()]
    elif isinstance(doc, list):
        envs = [FleetEnvironment(f"env-{i}", str(k)) for i, k in enumerate(doc)]
    else:
        raise FleetError(f"{path}: expected an object {{label: key}} or a list of keys")
    if not envs:
        raise FleetError(f"{path} holds no keys")
    return envs


def save_keys(path: Path, environments: Sequence[FleetEnvironment]) -> None:
    path.write_text(json.dumps({e.label: e.key for e in environments}, indent=2))
    path.chmod(0o600)


def provision_environments(*, count: int, run_id: str) -> list[FleetEnvironment]:
    """Fresh environments with keys in this process's database: one organization
    `fleet-<run_id>`, projects with a production and a CI environment each."""
    from accounts.services.provisioning import provision

    today = dt.datetime.now(dt.UTC).date()
    projects = []
    for p in range((count + 1) // 2):
        envs = [{"name": "production", "kind": "production"}]
        if 2 * p + 1 < count:
            envs.append({"name": "ci", "kind": "cicd"})
        projects.append({"slug": f"p{p}", "name": f"Fleet project {p}", "environments": envs})
    result = provision(
        {
            "organization": {"slug": f"fleet-{run_id}", "name": f"Fleet simulation {run_id}"},
            "owner_email": f"fleet-{run_id}@example.com",
            "contract": {
                "plan": "fleet-simulation",
                "starts_on": (today - dt.timedelta(days=30)).isoformat(),
                "ends_on": (today + dt.timedelta(days=365)).isoformat(),
                "api_calls_per_period": None,
                "seats_per_environment": None,
                "tenants_per_environment": None,
                "nonprod_daily_api_calls": None,
                "overage_policy": {"api_calls": "allow", "seats": "allow", "tenants": "allow"},
            },
            "projects": projects,
        }
    )
    org = result["organization"]["slug"]
    return [
        FleetEnvironment(f"{org}/{p['slug']}/{e['name']}", e["api_key"])
        for p in result["projects"]
        for e in p["environments"]
    ]


# --- totals -----------------------------------------------------------------------------
def totals_window(plan: Plan) -> tuple[dt.datetime, dt.datetime]:
    """Whole UTC days around the plan, so any hour the server attributes to is inside."""
    first = (plan.start - dt.timedelta(hours=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    last = plan.spec.end.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    return first, last


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _gauge(doc: object) -> GaugeTotals:
    if not isinstance(doc, dict):
        return GaugeTotals(None, None)
    return GaugeTotals(doc.get("max"), doc.get("last"))


def fetch_totals(
    transport: Transport, key: str, window: tuple[dt.datetime, dt.datetime]
) -> EnvTotals:
    query = urlencode({"from": _iso(window[0]), "to": _iso(window[1]), "granularity": "day"})
    try:
        resp = transport.request("GET", f"{USAGE_PATH}?{query}", key, None)
    except (http.client.HTTPException, OSError) as exc:
        raise FleetError(f"GET {USAGE_PATH}: {type(exc).__name__}: {exc}") from exc
    if resp.status != 200 or not isinstance(resp.body, dict):
        raise FleetError(f"GET {USAGE_PATH} answered {resp.status}: {json.dumps(resp.body)[:300]}")
    totals = resp.body.get("totals")
    if not isinstance(totals, dict) or not isinstance(totals.get("api_calls"), int):
        raise FleetError(f"GET {USAGE_PATH}: no totals.api_calls in {json.dumps(resp.body)[:300]}")
    return EnvTotals(
        totals["api_calls"], _gauge(totals.get("seats")), _gauge(totals.get("tenants"))
    )


def _expected_gauge(base: GaugeTotals, planned: GaugeTotals) -> GaugeTotals:
    peaks = [v for v in (base.max, planned.max) if v is not None]
    return GaugeTotals(
        max(peaks) if peaks else None, planned.last if planned.last is not None else base.last
    )


def compare(label: str, expected: EnvTotals, baseline: EnvTotals, after: EnvTotals) -> EnvCheck:
    want = EnvTotals(
        expected.api_calls,
        _expected_gauge(baseline.seats, expected.seats),
        _expected_gauge(baseline.tenants, expected.tenants),
    )
    got = EnvTotals(after.api_calls - baseline.api_calls, after.seats, after.tenants)
    check = EnvCheck(label, want, got)
    if got.api_calls != want.api_calls:
        check.problems.append(f"api_calls: expected {want.api_calls}, server {got.api_calls}")
    for metric in ("seats", "tenants"):
        w, g = getattr(want, metric), getattr(got, metric)
        if w != g:
            check.problems.append(
                f"{metric}: expected max {w.max} last {w.last}, server max {g.max} last {g.last}"
            )
    return check


# --- the run ----------------------------------------------------------------------------
def run_fleet(
    *,
    transport: Transport,
    environments: Sequence[FleetEnvironment],
    spec: FleetSpec,
    plan: Plan | None = None,
) -> FleetReport:
    if spec.environments > len(environments):
        raise FleetError(
            f"the plan needs {spec.environments} environments, have {len(environments)} keys"
        )
    plan = plan or build_plan(spec)
    envs = list(environments)[: spec.environments]
    keys = [e.key for e in envs]
    window = totals_window(plan)
    baselines = [fetch_totals(transport, key, window) for key in keys]
    main = send_lanes(transport, plan.lanes, keys)
    final = send_lanes(transport, plan.final, keys)
    errors = main.errors + final.errors
    checks = []
    for i, env in enumerate(envs):
        try:
            after = fetch_totals(transport, env.key, window)
        except FleetError as exc:
            errors.append(f"{env.label}: {exc}")
            checks.append(EnvCheck(env.label, plan.expected[i], None, [str(exc)]))
            continue
        checks.append(compare(env.label, plan.expected[i], baselines[i], after))
    return FleetReport(plan=plan, main=main, final=final, checks=checks, errors=errors)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _g(g: GaugeTotals) -> str:
    return f"{g.max}/{g.last}"


class Writer(Protocol):
    """Where a report goes: a text stream, or a management command's stdout."""

    def write(self, text: str) -> object: ...


def print_report(report: FleetReport, out: Writer) -> None:
    spec, main = report.plan.spec, report.main
    mode = f"batch of up to {spec.batch_size}" if spec.batch else "single"
    out.write(
        f"fleet {spec.run_id}: {spec.environments} environments x {spec.instances} instances, "
        f"{spec.minutes} minutes, seed {spec.seed}, {mode}, {spec.lanes} clients\n"
    )
    out.write(
        f"sent {main.readings + report.final.readings} readings in "
        f"{main.requests + report.final.requests} requests "
        f"({main.retries + report.final.retries} retries, {len(report.errors)} errors); "
        f"main phase {main.readings} readings in {main.seconds:.2f} s = "
        f"{main.readings_per_second:,.0f} readings/s; latency p50 {_ms(main.percentile(50))} "
        f"p95 {_ms(main.percentile(95))} p99 {_ms(main.percentile(99))}\n"
    )
    width = max([len(c.label) for c in report.checks] + [11])
    out.write(
        f"{'environment':<{width}}  {'expected':>12} {'server':>12}  "
        f"{'seats max/last exp':>18} {'server':>8}  {'tenants exp':>11} {'server':>8}\n"
    )
    for c in report.checks:
        server = c.server or EnvTotals(0, GaugeTotals(None, None), GaugeTotals(None, None))
        mark = "ok" if not c.problems else "MISMATCH"
        out.write(
            f"{c.label:<{width}}  {c.expected.api_calls:>12} {server.api_calls:>12}  "
            f"{_g(c.expected.seats):>18} {_g(server.seats):>8}  "
            f"{_g(c.expected.tenants):>11} {_g(server.tenants):>8}  {mark}\n"
        )
    said = report.said_counted
    out.write(
        f"{'overall':<{width}}  {report.expected_total:>12} {report.server_total:>12}  "
        f"(the responses said {said} counted)\n"
    )
    for c in report.checks:
        for problem in c.problems:
            out.write(f"MISMATCH {c.label}: {problem}\n")
    for error in report.errors[:20]:
        out.write(f"ERROR {error}\n")
    if len(report.errors) > 20:
        out.write(f"... and {len(report.errors) - 20} more errors\n")
    out.write("RESULT: OK, totals exact\n" if report.ok else "RESULT: FAILED\n")
