"""/transparency is generated from the ingest's accepted fields and the usage models: a
field added to either without a description here fails this test."""

import pytest
from django.test import Client

from controlpanel.web import transparency
from metering import readings
from metering.models import UsageReading

pytestmark = pytest.mark.django_db


def test_every_sent_and_stored_field_is_described():
    facts = transparency.facts()
    assert facts["undocumented"] == []
    assert [f.name for f in facts["sent"]] == sorted(readings.FIELDS)
    reading_table = next(t for t in facts["tables"] if t.name == "Usage reading")
    assert [f.name for f in reading_table.fields] == [
        f.name for f in UsageReading._meta.concrete_fields
    ]


def test_the_public_page_lists_them_without_signing_in():
    html = Client().get("/transparency").content.decode()
    for name in readings.FIELDS:
        assert f"<td><code>{name}</code></td>" in html
    for field in UsageReading._meta.concrete_fields:
        assert f"<td><code>{field.name}</code></td>" in html
    assert "IP addresses of your servers or your users." in html


def test_a_new_field_shows_as_undocumented(monkeypatch):
    monkeypatch.setattr(readings, "FIELDS", readings.FIELDS | {"user_email"})
    assert transparency.facts()["undocumented"] == ["user_email"]
