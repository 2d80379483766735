from __future__ import annotations

import pytest
from django.db import connection


@pytest.fixture(params=["sql", "orm"])
def ingest_path(request, settings):
    """Run a test through both ingest paths: PostgreSQL's single-statement SQL and the
    portable ORM path (SQLite always takes the ORM path)."""
    settings.INGEST_SQL_FAST_PATH = request.param == "sql"
    if request.param == "sql" and connection.vendor != "postgresql":
        pytest.skip("the SQL fast path runs on PostgreSQL only")
    return request.param
