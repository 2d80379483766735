"""Settings come from the environment: each case starts a fresh interpreter with a
chosen environment and reads what Django made of it."""

import json
import os
import secrets
import subprocess
import sys

from cryptography.fernet import Fernet
from django.conf import settings

PRINT = (
    "import django, json; from django.conf import settings as s; django.setup(); "
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'name': str(s.DATABASES['default']['NAME']),"
    " 'broker': s.CELERY_BROKER_URL, 'hosts': s.ALLOWED_HOSTS, 'staff': s.STAFF_ALERT_EMAILS,"
    " 'email': s.EMAIL_BACKEND, 'tz': s.TIME_ZONE, 'debug': s.DEBUG, 'cache': s.CACHES['default']['BACKEND'],"
    " 'retention': s.RETENTION_DAYS, 'init': s.DATABASES['default'].get('OPTIONS', {}).get('init_command', '')}))"
)


def run(env: dict[str, str], code: str = PRINT) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "controlpanel.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_embedded_defaults_need_no_servers(tmp_path):
    out = run({"DEBUG": "1", "DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    conf = json.loads(out.stdout)
    assert conf["db"] == "django.db.backends.sqlite3"
    assert conf["name"] == str(tmp_path / "controlpanel.sqlite3")
    assert "journal_mode=WAL" in conf["init"]
    assert conf["broker"] == "filesystem://"
    assert conf["tz"] == "UTC"
    assert conf["cache"].endswith("LocMemCache")
    assert conf["email"] == "django.core.mail.backends.console.EmailBackend"


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


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env={
            "PATH": os.environ["PATH"],
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "cp.example.com",
            "DATA_DIR": str(tmp_path),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout
