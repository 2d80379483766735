from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import time_machine
from django.core.cache import cache

from accounts.models import Environment, EnvironmentKind, Organization, Project, Role, User
from accounts.services.api_keys import api_key_issue
from controlpanel import embedded_db
from tests.factories import (
    ContractFactory,
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    UserFactory,
)

# Every test runs at this instant (time-machine, ticking from there) unless it travels
# itself, so no result depends on the day the suite runs. It lies after every date the
# tests write down: a test that mixes this ambient clock with a frozen NOW of its own
# fails the day it is written, instead of the day the calendar passes NOW. Tests marked
# `slow` start processes (Celery worker, gunicorn), which read the real clock, so they
# run on it too. See docs/decisions/0002-test-clocks.md.
TEST_CLOCK = dt.datetime(2031, 3, 15, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _test_clock(request):
    if request.node.get_closest_marker("slow"):
        yield
        return
    with time_machine.travel(TEST_CLOCK, tick=True):
        yield


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@dataclass
class Tenant:
    """One customer as the tests see it: an organization with its cast and keys."""

    organization: Organization
    owner: User
    admin: User
    member: User
    project: Project
    production: Environment
    api_key: str  # plaintext key of the production environment


def make_tenant(slug: str, **contract_terms) -> Tenant:
    organization = OrganizationFactory(slug=slug, name=slug.title())
    owner = MembershipFactory(organization=organization, role=Role.OWNER).user
    admin = MembershipFactory(organization=organization, role=Role.ADMIN).user
    member = MembershipFactory(organization=organization, role=Role.MEMBER).user
    ContractFactory(organization=organization, **contract_terms)
    project = ProjectFactory(organization=organization, slug="website")
    production = project.environments.get(kind=EnvironmentKind.PRODUCTION)
    key = api_key_issue(environment=production).plaintext
    return Tenant(organization, owner, admin, member, project, production, key)


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    """A DATA_DIR for processes that start an embedded PostgreSQL server of their own.
    Not under pytest's tmp_path: pytest makes /tmp/pytest-of-<user> 0700 whenever a session
    starts, which locks the server's system user (running as root, docs/decisions/0001)
    out of a data folder below it."""
    path = Path(tempfile.mkdtemp(prefix="cp-embedded-"))
    yield path
    if (path / "postgres").exists():
        embedded_db.stop(path / "postgres")  # left running only by a failed test
    shutil.rmtree(path)


@pytest.fixture
def tenant(db) -> Tenant:
    return make_tenant("acme")


@pytest.fixture
def other_tenant(db) -> Tenant:
    """An outsider organization: it must never see `tenant`'s data, nor the reverse."""
    return make_tenant("globex")


@pytest.fixture
def outsider(db) -> User:
    return UserFactory()


@pytest.fixture
def staff_user(db) -> User:
    return UserFactory(is_staff=True, is_superuser=True)


def pytest_collection_modifyitems(config, items):
    """`redis` tests need a Redis server: with REDIS_URL unset they fail at once, saying
    so, rather than being skipped (CI and `make test` set it; nothing is ever skipped)."""
    from django.conf import settings

    if settings.REDIS_URL:
        return
    for item in items:
        if "redis" in item.keywords:
            item.add_marker(pytest.mark.usefixtures("_needs_redis_url"))


@pytest.fixture
def _needs_redis_url():
    pytest.fail("this test needs a Redis server: set REDIS_URL=redis://...")
