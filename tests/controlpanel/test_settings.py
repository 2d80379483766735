"""Settings come from the environment: each case starts a fresh interpreter with a
chosen environment and reads what Django made of it."""

import json
import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

from tests.processes import stop

PRINT = (
    "import django, json; from django.conf import settings as s; django.setup(); "
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'name': str(s.DATABASES['default']['NAME']),"
    " 'host': s.DATABASES['default']['HOST'],"
    " 'broker': s.CELERY_BROKER_URL, 'hosts': s.ALLOWED_HOSTS, 'staff': s.STAFF_ALERT_EMAILS,"
    " 'email': s.EMAIL_BACKEND, 'tz': s.TIME_ZONE, 'debug': s.DEBUG, 'cache': s.CACHES['default']['BACKEND'],"
    " 'retention': s.RETENTION_DAYS, 'control': s.CELERY_BROKER_TRANSPORT_OPTIONS['control_folder']"
    " if s.CELERY_BROKER_URL == 'filesystem://' else None}))"
)
# What the embedded server answers, once Django is set up on it.
QUERY = (
    "import django, json; django.setup(); from django.db import connection; "
    "c = connection.cursor(); "
    "c.execute('SELECT current_setting(%s), current_database(), pg_postmaster_start_time()', "
    "['server_version_num']); v, name, started = c.fetchone(); "
    "print(json.dumps({'version': int(v), 'name': name, 'started': started.isoformat()}))"
)


def clean_env(env: dict[str, str]) -> dict[str, str]:
    """`env` over the bare minimum of this process's environment, production settings."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {**clean, "DJANGO_SETTINGS_MODULE": "controlpanel.settings", **env}


def run(env: dict[str, str], code: str = PRINT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def server_runs(pgdata) -> bool:
    return (pgdata / "postmaster.pid").exists()


def test_embedded_defaults_need_no_servers(embedded_data_dir):
    """No DATABASE_URL: settings start a PostgreSQL server of their own under DATA_DIR,
    which a query reaches; the process, the only one using it, stops it on its way out."""
    out = run({"DEBUG": "1", "DATA_DIR": str(embedded_data_dir)}, f"{PRINT}; {QUERY}")
    assert out.returncode == 0, out.stderr
    conf, answer = map(json.loads, out.stdout.splitlines())
    assert conf["db"] == "django.db.backends.postgresql"
    assert (conf["name"], conf["host"]) == ("controlpanel", str(embedded_data_dir / "postgres"))
    assert conf["broker"] == "filesystem://"
    assert conf["control"] == str(embedded_data_dir / "broker" / "control")
    assert conf["tz"] == "UTC"
    assert conf["cache"].endswith("LocMemCache")
    assert conf["email"] == "django.core.mail.backends.console.EmailBackend"
    assert answer["version"] >= 180000
    assert answer["name"] == "controlpanel"
    assert not server_runs(embedded_data_dir / "postgres")


def test_the_embedded_server_is_shared_and_the_last_user_stops_it(embedded_data_dir):
    """A process that finds the server running uses it and leaves it running for the
    others; the last one to exit stops it."""
    env = {"DEBUG": "1", "DATA_DIR": str(embedded_data_dir)}
    # The first user prints the server's start time, then waits for a line on stdin.
    first = subprocess.Popen(
        [sys.executable, "-c", f"{QUERY}; input()"],
        cwd=settings.BASE_DIR,
        env=clean_env(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started = json.loads(first.stdout.readline())["started"]
        second = run(env, QUERY)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)["started"] == started  # the same server, reused
        assert server_runs(embedded_data_dir / "postgres")  # the first user still holds it
        first.communicate("\n", timeout=60)
    finally:
        stop(first)
    assert first.returncode == 0
    assert not server_runs(embedded_data_dir / "postgres")


def test_production_settings_come_from_the_environment(tmp_path):
    out = run(
        {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://u:p@db.internal:5432/cp",
            "REDIS_URL": "redis://cache.internal:6379/2",
            "ALLOWED_HOSTS": "cp.example.com,api.example.com",
            "STAFF_ALERT_EMAILS": "a@example.com,b@example.com",
            "EMAIL_URL": "smtp://user:pw@mail.example.com:587",
            "RETENTION_DAYS": "90",
        }
    )
    assert out.returncode == 0, out.stderr
    conf = json.loads(out.stdout)
    assert conf["db"] == "django.db.backends.postgresql"
    assert conf["name"] == "cp"
    assert conf["broker"] == "redis://cache.internal:6379/2"
    assert conf["hosts"] == ["cp.example.com", "api.example.com"]
    assert conf["staff"] == ["a@example.com", "b@example.com"]
    assert conf["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert conf["cache"].endswith("RedisCache")
    assert conf["retention"] == 90
    assert conf["debug"] is False


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    out = run({"DATA_DIR": str(tmp_path)})
    assert out.returncode != 0
    assert "SECRET_KEY is not set" in out.stderr


@pytest.mark.parametrize("module", ["controlpanel.settings", "controlpanel.settings_ingest"])
def test_check_deploy_is_clean_with_production_settings(tmp_path, module):
    """Both services (web, and the ingest-only one) as the compose file runs them."""
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": module,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "cp.example.com",
            "DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://u:p@db.internal:5432/cp",  # `check` connects to none
            "REDIS_URL": "redis://cache.internal:6379/0",
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "WARNING" not in out.stdout + out.stderr
    silenced = "4 silenced" if module.endswith("ingest") else "0 silenced"
    assert out.stdout.strip() == f"System check identified no issues ({silenced})."
