"""Schema fuzzing: schemathesis against `/api/schema/` of the app under gunicorn, with an
environment API key and with a customer's personal access token, every check
(`--checks all`), a bounded number of examples per operation and a fixed seed: zero
failures. The schema and the server agree (tests/controlpanel/test_api_schema.py pins each
finding); the documented limits JSON Schema cannot express are taught to the generator by
tests/controlpanel/schema_fuzz_hooks.py.

The schemathesis CLI runs in a subprocess: its own engine (phases, stateful links, checks)
as an integrator would run it, and a report that says what failed and how to replay it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from accounts.models import Role
from accounts.services.access import pat_issue
from accounts.services.team import invitation_create
from metering.compliance.services import webhook_endpoint_create
from tests.conftest import make_tenant
from tests.processes import ROOT, free_port, process_env, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PORTS = range(8900, 8950)  # this test's live-server ports
EXAMPLES = 25  # per operation and phase; the two runs take about 2 x 60 s on 2 cores
SEED = 15
# The fuzzed routes name the tenant's own organization and project, so the generated
# requests reach its objects rather than 404s only.
CONFIG = """
[parameters]
org = "acme"
project = "website"
orgId = "acme"
projectId = "website"
"""


@pytest.fixture
def credentials(tmp_path: Path) -> dict[str, str]:
    tenant = make_tenant("acme")
    owner = tenant.organization.memberships.get(role=Role.OWNER)
    webhook_endpoint_create(
        organization=tenant.organization,
        url="https://hooks.example.com/cp",
        created_by=tenant.owner,
    )
    invitation_create(
        organization=tenant.organization,
        email="new@example.com",
        role=Role.MEMBER,
        by=owner,
        base_url="http://testserver",
    )
    return {
        "environment API key": tenant.api_key,
        "personal access token": pat_issue(user=tenant.owner).plaintext,
    }


def schemathesis_run(port: int, token: str, workdir: Path) -> subprocess.CompletedProcess:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run"]
    cmd += [f"http://127.0.0.1:{port}/api/schema/?format=json", "--checks", "all"]
    cmd += ["--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "1"]
    cmd += ["--header", f"Authorization: Bearer {token}", "--generation-database", "none"]
    cmd += ["--request-timeout", "10", "--no-color"]
    env = {
        **process_env(),
        # Importable from the checkout: the hooks of the documented limits.
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.controlpanel.schema_fuzz_hooks",
    }
    return subprocess.run(
        cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@contextmanager
def gunicorn(log: Path) -> Iterator[int]:
    """The app under gunicorn, as tests.processes.gunicorn_process starts it, but with its
    output in a file: thousands of refusals would fill an unread pipe and stall it."""
    port = free_port(PORTS)
    cmd = [sys.executable, "-m", "gunicorn", "controlpanel.wsgi:application"]
    cmd += ["--bind", f"127.0.0.1:{port}", "--worker-class", "gthread"]
    cmd += ["--workers", "2", "--threads", "2"]
    env = process_env(ALLOWED_HOSTS="127.0.0.1,localhost", LOG_LEVEL="ERROR")
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: proc.poll() is not None or _answers(port), timeout=60)
            assert proc.poll() is None, log.read_text()
            yield port
        finally:
            stop(proc)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# Redis, as in production: the rate limits (429s) and the license cache are shared by the
# workers.
@pytest.mark.redis
@pytest.mark.parametrize("who", ["environment API key", "personal access token"])
def test_schemathesis_finds_nothing(credentials, who, tmp_path):
    with gunicorn(tmp_path / "gunicorn.log") as port:
        result = schemathesis_run(port, credentials[who], tmp_path)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-20000:] + (tmp_path / "gunicorn.log").read_text()[-5000:]
    assert "Tested: 34" in report, report[-3000:]  # every operation of the schema
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report[-3000:]
    generated, passed = re.search(r"(\d+) generated, (\d+) passed", report).groups()
    assert int(generated) == int(passed) > 34 * EXAMPLES, report[-3000:]
