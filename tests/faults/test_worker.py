"""A Celery worker killed (`-9`) in the middle of sending notifications: it had claimed
the messages and was talking to the mail server. Nothing is lost (the rows stay pending
until their claim expires) and nothing is doubled: once a new worker runs, each recipient
has exactly one message, sent once, and the flag behind it exactly one row and one event.
(A worker killed mid-evaluation: tests/metering/compliance/test_worker.py.)"""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
from collections.abc import Iterator

import httpx
import pytest
from celery import Celery

from tests.faults.stack import Postgres, app_env, manage, web
from tests.metering.compliance.live import PrivateRedis
from tests.processes import celery_process, free_port, wait_until

pytestmark = pytest.mark.slow

ORG = "killed-sender"
OWNER = "owner@killed-sender.example"
STAFF = "alerts@vendor.example"
CLAIM_SECONDS = 2
ROWS = (
    "SELECT n.recipient, n.status, n.attempts FROM metering_notification n "
    "JOIN accounts_organization o ON o.id = n.organization_id WHERE o.slug = %s "
    "ORDER BY n.recipient"
)
FLAGS = (
    "SELECT f.metric, f.level, f.value, f.limit, "
    "(SELECT count(*) FROM metering_flagevent e WHERE e.flag_id = f.id) "
    "FROM metering_overageflag f JOIN accounts_organization o ON o.id = f.organization_id "
    "WHERE o.slug = %s"
)


@pytest.fixture
def mail_server_that_never_answers() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and never sends the
    SMTP greeting: a sender stays inside its send until it is killed."""
    port = free_port(range(8990, 9000))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        yield port


def rows(pg: Postgres, sql: str) -> list[tuple]:
    with pg.connect() as conn:
        return conn.execute(sql, (ORG,)).fetchall()


def over_the_warning(pg: Postgres, env: dict[str, str]) -> None:
    """An organization with a 1,000-call contract that used 850 (a warning flag), and the
    evaluation run, so a flag event waits to be notified."""
    today = dt.datetime.now(dt.UTC).date()
    spec = {
        "organization": {"slug": ORG, "name": "Killed sender"},
        "owner_email": OWNER,
        "contract": {
            "plan": "faults",
            "starts_on": (today - dt.timedelta(days=3)).isoformat(),
            "ends_on": (today + dt.timedelta(days=300)).isoformat(),
            "api_calls_per_period": 1000,
            "overage_policy": {"api_calls": "allow"},
        },
        "projects": [{"slug": "website", "name": "Website"}],
    }
    path = pg.root / "killed-sender.json"
    path.write_text(json.dumps(spec))
    key = json.loads(manage(env, "provision", str(path)))["projects"][0]["environments"][0]
    with web(env, workers=1, threads=1) as base:
        pushed = httpx.post(
            f"{base}/api/v1/usage",
            json={"instance": "i", "boot": "b", "api_calls": 850},
            headers={"Authorization": f"Bearer {key['api_key']}"},
        )
        assert pushed.status_code == 202, pushed.text
    manage(env, "compliance", "evaluate")


def test_a_worker_killed_mid_send_loses_and_doubles_no_message(
    pg: Postgres, redis_server: PrivateRedis, mail_server_that_never_answers: int
):
    env = app_env(
        pg, redis_server, STAFF_ALERT_EMAILS=STAFF, NOTIFY_CLAIM_SECONDS=str(CLAIM_SECONDS)
    )
    over_the_warning(pg, env)
    app = Celery(broker=redis_server.url, backend=redis_server.url)
    # The doomed worker sends mail over SMTP (the real settings, not the tests' in-memory
    # mailbox) to the server that never answers.
    doomed_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "controlpanel.settings",
        "EMAIL_URL": f"smtp://127.0.0.1:{mail_server_that_never_answers}",
    }
    with celery_process("worker", "--pool=solo", "--loglevel=WARNING", env=doomed_env) as doomed:
        app.send_task("metering.compliance.send_notifications")
        # Both messages claimed (one batch), none sent: the worker is inside the first send.
        wait_until(
            lambda: (
                pg.scalar(
                    "SELECT count(*) FROM metering_notification WHERE claim_token <> '' "
                    "AND status = 'pending'"
                )
                == 2
            ),
            timeout=60,
        )
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=30)
    assert rows(pg, ROWS) == [(STAFF, "pending", 0), (OWNER, "pending", 0)]

    with celery_process("worker", "--pool=solo", "--loglevel=WARNING", env=env):

        def all_sent() -> bool:
            # As beat would: run the sender until the dead worker's claims expired.
            app.send_task("metering.compliance.send_notifications").get(timeout=60)
            return {status for _, status, _ in rows(pg, ROWS)} == {"sent"}

        wait_until(all_sent, timeout=90, every=1)
        # Evaluating and sending again changes nothing: no new flag, no second message.
        app.send_task("metering.compliance.evaluate").get(timeout=60)
        app.send_task("metering.compliance.send_notifications").get(timeout=60)
    assert rows(pg, ROWS) == [(STAFF, "sent", 1), (OWNER, "sent", 1)]
    assert rows(pg, FLAGS) == [("api_calls", "warning", 850, 1000, 1)]
