"""The demo data pushes two days of simulated usage through the real ingest endpoints,
once: loading the demo again leaves the history as it is."""

import pytest
from django.db.models import Sum

from controlpanel.demo import load_demo
from metering.models import UsageReading, UsageRollup

pytestmark = pytest.mark.django_db

DEMO_ENVIRONMENTS = ["acme/docs/production", "acme/website/ci", "acme/website/production"]


def _calls(label: str) -> int:
    org, project, name = label.split("/")
    return (
        UsageRollup.objects.filter(
            environment__project__organization__slug=org,
            environment__project__slug=project,
            environment__name=name,
            metric="api_calls",
        ).aggregate(t=Sum("total"))["t"]
        or 0
    )


def test_demo_loads_simulated_usage_once(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    usage = load_demo()["usage"]
    assert usage.problems == []
    assert usage.skipped == []
    assert sorted(usage.pushed) == DEMO_ENVIRONMENTS
    for label, calls in usage.pushed.items():
        assert calls > 0
        assert _calls(label) == calls
    readings = UsageReading.objects.count()
    assert readings > 3 * 3 * 48 * 4  # 3 instances x 4 readings an hour x 48 hours, and more

    again = load_demo()["usage"]
    assert again.pushed == {}
    assert sorted(again.skipped) == DEMO_ENVIRONMENTS
    assert UsageReading.objects.count() == readings
    assert {label: _calls(label) for label in DEMO_ENVIRONMENTS} == usage.pushed


def test_the_demo_command_says_where_to_start(settings, tmp_path):
    import io

    from django.core.management import call_command

    settings.DATA_DIR = tmp_path
    settings.DEBUG = True
    out = io.StringIO()
    call_command("demo", url="http://127.0.0.1:8097", stdout=out)
    assert (
        "Start here: http://127.0.0.1:8097/ and sign in as owner@acme.example / demo "
        "(the dashboard of acme); staff: http://127.0.0.1:8097/admin/"
    ) in out.getvalue()
