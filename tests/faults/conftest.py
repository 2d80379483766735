"""One stack for the whole fault module: an embedded PostgreSQL (migrated once) and a
redis-server, both of its own. A test that stops, kills or freezes one brings it back
before it ends (the fixtures check), so the next test starts on a healthy stack."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.faults.stack import Postgres, app_env, manage, private_redis
from tests.metering.compliance.live import PrivateRedis


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    manage(app_env(server, None), "migrate", "--verbosity=0")
    yield server
    server.close()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[PrivateRedis]:
    server = private_redis()
    yield server
    server.stop()


@pytest.fixture
def pg(postgres: Postgres) -> Iterator[Postgres]:
    yield postgres
    assert postgres.scalar("SELECT 1") == 1, "the test left PostgreSQL down"
