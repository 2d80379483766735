"""The telemetry client of /clients/latest.js, run by `node` as the CMS's GraphQL function
runs it: downloaded from a live server (gunicorn) as the CMS build does
(webiny/webiny-js packages/serverless-cms-aws/src/api/plugins/injectWcpTelemetryClientCode.ts:
fetch `{WCP_API_URL}/clients/latest.js`, rename handler.js to _handler.js, write the answer
as handler.js), wrapped around a fake _handler.js, and driven invocation by invocation
(tests/cms/telemetry_harness.js): results and errors pass through, the server's totals
are exact through an error, the server going down and coming back, and a container
restart; no key means one warning and no reports."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from django.db.models import Sum

from accounts.models import Environment, EnvironmentKind
from accounts.services.api_keys import api_key_issue
from metering.models import UsageReading, UsageSeries
from tests.conftest import make_tenant
from tests.processes import free_port, gunicorn_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PORTS = range(8700, 8790)  # this area's live-server ports
HARNESS = Path(__file__).with_name("telemetry_harness.js")
NODE = shutil.which("node")
FAKE_HANDLER = """\
"use strict";
exports.handler = async (event, context) => {
    if (event.fail) {
        const error = new Error(`boom ${event.n}`);
        error.thrownBy = "_handler.js";
        error.extra = { n: event.n };
        throw error;
    }
    return { statusCode: 200, body: JSON.stringify({ n: event.n, fn: context.functionName }) };
};
"""
WARNING = "[control-panel telemetry]"


class Container:
    """One running function container (a node process)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        assert NODE, "node is needed (node 20 is on the CI machines)"
        self.proc = subprocess.Popen(
            [NODE, str(HARNESS), str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"PATH": "/usr/bin:/bin", **env},
        )

    def send(self, command: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, self.stop()
        return json.loads(line)

    def invoke(self, n: int, *, fail: bool = False) -> dict:
        return self.send({"invoke": {"n": n, "fail": fail}})

    def stop(self) -> str:
        """Ends the container (end of its input); its stderr (the warnings)."""
        _, errors = self.proc.communicate(timeout=30)
        return errors


def build_function(url: str, folder: Path) -> httpx.Response:
    """The CMS build's after-build step, done as it does it."""
    folder.mkdir()
    (folder / "handler.js").write_text(FAKE_HANDLER)
    response = httpx.get(f"{url}/clients/latest.js")
    (folder / "handler.js").rename(folder / "_handler.js")
    (folder / "handler.js").write_text(response.text)
    return response


def counted(environment: Environment) -> int:
    total = UsageReading.objects.filter(environment=environment).aggregate(
        total=Sum("counted_api_calls")
    )["total"]
    return total or 0


@pytest.fixture
def ci(db):
    tenant = make_tenant("acme")
    environment = Environment.objects.create(
        project=tenant.project, name="ci", kind=EnvironmentKind.CICD
    )
    return environment, api_key_issue(environment=environment).plaintext


def test_counts_are_exact_through_errors_an_outage_and_a_restart(ci, tmp_path):
    environment, key = ci
    port = free_port(PORTS)
    url = f"http://127.0.0.1:{port}"
    env = {"WCP_PROJECT_ENVIRONMENT_API_KEY": key, "WCP_TELEMETRY_FLUSH_SECONDS": "0"}
    with gunicorn_process(range(port, port + 1)):
        download = build_function(url, tmp_path / "build")
        assert download.status_code == 200
        assert download.headers["content-type"] == "text/javascript; charset=utf-8"
        assert download.headers["cache-control"] == "public, max-age=300"
        # The served file knows where it came from (PUBLIC_URL is unset here).
        assert f'const SERVED_BY = "{url}";' in download.text
        # The CMS's newer builds rewrite the first "./_handler.js" to "./_handler.cjs":
        # that first occurrence must be the require.
        first = download.text.index("./_handler.js")
        assert download.text[first - 9 : first] == 'require("'

        first_container = Container(tmp_path / "build", env)
        for n in range(1, 21):
            answer = first_container.invoke(n, fail=n % 7 == 0)
            if n % 7 == 0:
                assert answer == {
                    "ok": False,
                    "error": f"boom {n}",
                    "same": True,
                    "extra": {"n": n},
                }
            else:
                body = json.dumps({"n": n, "fn": "cms-graphql"}, separators=(",", ":"))
                assert answer == {"ok": True, "result": {"statusCode": 200, "body": body}}
        assert counted(environment) == 20

    # The Control Panel is down: the function works as before, the calls keep counting.
    for n in range(21, 26):
        assert first_container.invoke(n)["ok"] is True
    assert counted(environment) == 20

    with gunicorn_process(range(port, port + 1)):
        for n in range(26, 28):
            assert first_container.invoke(n)["ok"] is True
        assert counted(environment) == 27  # the cumulative count healed the outage
        warnings = first_container.stop()

        # A restart: a new container counts from 0 under a new instance and boot. Its key
        # comes from WCP_PROJECT_ENVIRONMENT this time.
        wcp = base64.b64encode(json.dumps({"id": "1", "apiKey": key}).encode()).decode()
        second = Container(
            tmp_path / "build", {"WCP_PROJECT_ENVIRONMENT": wcp, "WCP_TELEMETRY_FLUSH_SECONDS": "0"}
        )
        for n in range(1, 5):
            assert second.invoke(n)["ok"] is True
        assert second.stop() == ""
        assert counted(environment) == 31

    assert [line for line in warnings.splitlines() if WARNING in line] == [
        f"{WARNING} could not report usage to {url} (connect ECONNREFUSED 127.0.0.1:{port}); "
        "will retry."
    ]
    series = list(UsageSeries.objects.filter(environment=environment).order_by("highest"))
    assert [s.highest for s in series] == [4, 27]
    assert all(s.instance.startswith("cms-graphql:") for s in series)
    assert len({s.instance for s in series}) == len({s.boot for s in series}) == 2


def test_reports_at_most_every_flush_interval(ci, tmp_path):
    environment, key = ci
    port = free_port(PORTS)
    start = 1_800_000_000_000  # the container's clock, frozen and moved by the test
    with gunicorn_process(range(port, port + 1)):
        build_function(f"http://127.0.0.1:{port}", tmp_path / "build")
        container = Container(
            tmp_path / "build",
            {"WCP_PROJECT_ENVIRONMENT_API_KEY": key, "HARNESS_CLOCK_MS": str(start)},
        )
        assert container.invoke(1)["ok"] is True  # the first invocation reports
        assert counted(environment) == 1
        for n, seconds in [(2, 10), (3, 30), (4, 59.999)]:
            container.send({"clock": start + int(seconds * 1000)})
            assert container.invoke(n)["ok"] is True
        assert counted(environment) == 1  # default WCP_TELEMETRY_FLUSH_SECONDS: 60
        container.send({"clock": start + 60_000})
        assert container.invoke(5)["ok"] is True
        assert counted(environment) == 5
        assert container.stop() == ""


def test_without_a_key_the_function_works_and_warns_once(ci, tmp_path):
    environment, _ = ci
    port = free_port(PORTS)
    with gunicorn_process(range(port, port + 1)):
        build_function(f"http://127.0.0.1:{port}", tmp_path / "build")
        container = Container(tmp_path / "build", {"WCP_TELEMETRY_FLUSH_SECONDS": "0"})
        for n in range(1, 4):
            assert container.invoke(n)["ok"] is True
        assert container.invoke(4, fail=True)["error"] == "boom 4"
        warnings = container.stop()
    assert warnings.splitlines() == [
        f"{WARNING} no WCP_PROJECT_ENVIRONMENT_API_KEY or WCP_PROJECT_ENVIRONMENT: telemetry is off."
    ]
    assert counted(environment) == 0
