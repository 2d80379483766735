"""Every native ingest test case again, through the real WSGI application
(controlpanel.wsgi.application, where POST /api/v1/usage[/batch] take the fast lane)
instead of Django's test handler: the same answers, the same rows."""

from __future__ import annotations

import pytest

from tests.metering.test_usage_api import *  # noqa: F403  (collected again here)
from tests.metering.wsgi_lane import WsgiClient


@pytest.fixture
def client():
    lane_client = WsgiClient()
    yield lane_client
    handler = lane_client.handler
    # Each POST to the ingest paths was answered by the lane, not handed to Django.
    assert handler.lane_answered == handler.ingest_posts
