"""`simulate_fleet` against a real server process (gunicorn on the test database): a small
fleet gets exact totals and exit 0; a server that counts wrong makes it exit 1."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum

from accounts.models import Environment
from metering.models import UsageRollup
from tests.processes import ROOT, gunicorn_process, process_env
from tools.fleet.plan import FleetSpec
from tools.fleet.run import provision_environments, run_fleet, save_keys
from tools.fleet.transport import HttpTransport

PORTS = range(8200, 8290)  # this area's live-server ports (bench/ingest uses 8290+)


@contextmanager
def app_server() -> Iterator[str]:
    """gunicorn (2 gthread workers) serving the test database, as in production."""
    with gunicorn_process(PORTS, workers=2, threads=4) as port:
        yield f"http://127.0.0.1:{port}"


def _rollup_calls(labels_to_ids: dict[str, int]) -> int:
    return (
        UsageRollup.objects.filter(
            environment_id__in=labels_to_ids.values(), metric="api_calls"
        ).aggregate(total=Sum("total"))["total"]
        or 0
    )


def _env_ids(environments) -> dict[str, int]:
    out = {}
    for e in environments:
        org, project, name = e.label.split("/")
        out[e.label] = Environment.objects.get(
            project__organization__slug=org, project__slug=project, name=name
        ).pk
    return out


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_fleet_totals_are_exact_over_http(batch):
    environments = provision_environments(count=3, run_id="t1")
    spec = FleetSpec(
        environments=3,
        instances=3,
        minutes=25,
        seed=11,
        run_id="t1",
        end=dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=5),
        lanes=4,
        batch=batch,
        batch_size=17,
        restart_rate=0.08,
        duplicate_rate=0.15,
        late_rate=0.15,
    )
    with app_server() as url:
        transport = HttpTransport(url)
        report = run_fleet(transport=transport, environments=environments, spec=spec)
        transport.close()

    assert report.errors == []
    assert [c.problems for c in report.checks] == [[], [], []]
    assert report.ok
    assert report.server_total == report.expected_total == sum(report.plan.true_api_calls.values())
    assert report.said_counted == report.expected_total
    # The server's stored rollups agree with its API.
    assert _rollup_calls(_env_ids(environments)) == report.expected_total
    ids = list(_env_ids(environments).values())
    for i, check in enumerate(report.checks):
        assert (
            check.server.api_calls == check.expected.api_calls == report.plan.expected[i].api_calls
        )
        assert _rollup_calls({check.label: ids[i]}) == check.expected.api_calls


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_simulate_fleet_command_provisions_and_exits_0_on_exact_totals(tmp_path):
    keys_file = tmp_path / "keys.json"
    out = io.StringIO()
    with app_server() as url:
        call_command(
            "simulate_fleet",
            url=url,
            provision=True,
            keys_file=keys_file,
            environments=2,
            instances=2,
            minutes=15,
            seed=3,
            run_id="cmd",
            concurrency=3,
            stdout=out,
        )
    text = out.getvalue()
    assert "provisioned 2 environments (fleet-cmd)" in text
    assert "RESULT: OK, totals exact" in text
    assert "MISMATCH" not in text
    assert set(json.loads(keys_file.read_text())) == {
        "fleet-cmd/p0/production",
        "fleet-cmd/p0/ci",
    }


def _simulate(url: str, keys_file, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "manage.py",
            "simulate_fleet",
            "--url",
            url,
            "--keys-file",
            str(keys_file),
            "--environments",
            "2",
            "--instances",
            "2",
            "--minutes",
            "10",
            "--concurrency",
            "2",
            *extra,
        ],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_exit_status_is_0_when_exact_and_1_when_the_server_counts_wrong(tmp_path):
    environments = provision_environments(count=2, run_id="t2")
    keys_file = tmp_path / "keys.json"
    save_keys(keys_file, environments)
    with app_server() as url:
        good = _simulate(url, keys_file, "--seed", "1", "--batch")
        assert good.returncode == 0, good.stdout + good.stderr
        assert "RESULT: OK, totals exact" in good.stdout

        # Now the server miscounts: every write that adds to an api_calls rollup of the
        # first environment adds one phantom call.
        first = _env_ids(environments)[environments[0].label]
        with connection.cursor() as cursor:
            cursor.execute(
                """
                CREATE FUNCTION fleet_test_phantom_call() RETURNS trigger AS $$
                BEGIN
                    IF NEW.metric = 'api_calls' AND NEW.environment_id = %s
                       AND (TG_OP = 'INSERT' OR NEW.total > OLD.total) THEN
                        NEW.total := NEW.total + 1;
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql
                """,
                [first],
            )
            cursor.execute(
                "CREATE TRIGGER fleet_test_phantom BEFORE INSERT OR UPDATE ON metering_usagerollup "
                "FOR EACH ROW EXECUTE FUNCTION fleet_test_phantom_call()"
            )
        try:
            bad = _simulate(url, keys_file, "--seed", "2", "--single")
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DROP TRIGGER fleet_test_phantom ON metering_usagerollup")
                cursor.execute("DROP FUNCTION fleet_test_phantom_call()")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"MISMATCH {environments[0].label}: api_calls: expected" in bad.stdout
    assert f"MISMATCH {environments[1].label}" not in bad.stdout
    assert "RESULT: FAILED" in bad.stdout


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_refused_key_is_an_error_and_exits_1(tmp_path):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"bogus": "cpk_aaaaaaaaaaaa_" + "x" * 43}))
    with app_server() as url:
        result = _simulate(url, keys_file, "--environments", "1")
    assert result.returncode == 1
    assert "GET /api/v1/usage answered 401" in result.stderr


@pytest.mark.django_db
def test_command_refuses_bad_arguments(tmp_path):
    with pytest.raises(CommandError, match="--batch-size must be between 1 and 1000"):
        call_command("simulate_fleet", url="http://127.0.0.1:1", batch_size=1001)
    with pytest.raises(CommandError, match="give --keys-file, or --provision"):
        call_command("simulate_fleet", url="http://127.0.0.1:1")
    with pytest.raises(CommandError, match="cannot read keys"):
        call_command("simulate_fleet", url="http://127.0.0.1:1", keys_file=tmp_path / "none.json")
