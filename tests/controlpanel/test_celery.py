"""A round trip through a real Celery worker and the real broker (Redis in CI, the
embedded filesystem broker elsewhere)."""

import pytest

from controlpanel.celery import ping
from tests.processes import celery_process

pytestmark = pytest.mark.slow


def test_task_round_trip_through_a_real_worker():
    with celery_process("worker", "--pool=solo", "--loglevel=WARNING") as worker:
        result = ping.delay("hello from the test")
        # .get() blocks on the result backend with its own deadline.
        assert result.get(timeout=60) == "hello from the test"
        assert worker.poll() is None
