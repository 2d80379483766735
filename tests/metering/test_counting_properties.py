"""The counting rules as properties (hypothesis): any order, any repetition, several boots;
the no-boot restart rule; and the real HTTP and database path answering, reading by
reading, and storing, row by row, what the rules' model (tests/metering/model.py) says."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import time_machine
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from metering import selectors
from metering.counting import Reading
from metering.models import (
    UsageClosedThrough,
    UsageDay,
    UsageGauge,
    UsageReading,
    UsageRollup,
    UsageSeries,
)
from tests.metering.model import Model

T0 = dt.datetime(2026, 11, 22, 6, tzinfo=dt.UTC)

# A boot is a non-decreasing sequence of cumulative values (a counter that only grows).
boot_values = st.lists(st.integers(0, 10_000), min_size=1, max_size=8).map(sorted)


@st.composite
def fleets(draw):
    """Readings of several instances and boots, each taken at increasing times."""
    readings: list[Reading] = []
    expected = 0
    for instance in range(draw(st.integers(1, 3))):
        for boot in range(draw(st.integers(1, 3))):
            values = draw(boot_values)
            expected += values[-1]
            for step, value in enumerate(values):
                observed = T0 + dt.timedelta(minutes=37 * step + 5 * boot)
                seats = draw(st.none() | st.integers(0, 50))
                tenants = draw(st.none() | st.integers(0, 5))
                readings.append(
                    Reading(f"i{instance}", f"b{boot}", observed, value, seats, tenants)
                )
    return readings, expected


def _total(readings: list[Reading]) -> int:
    model = Model()
    return sum(model.push(r).counted for r in readings)


@given(fleet=fleets(), seed=st.integers(0, 2**32), dupes=st.integers(0, 10))
def test_any_order_and_repetition_counts_the_sum_of_each_boots_maximum(fleet, seed, dupes):
    readings, expected = fleet
    rng = random.Random(seed)
    sent = readings + [rng.choice(readings) for _ in range(dupes)]
    rng.shuffle(sent)
    assert _total(sent) == expected


@st.composite
def restarts(draw):
    """One instance with no boot: runs of growing values, each restart starting lower
    than the run before reached, observed at increasing times."""
    runs = []
    for _ in range(draw(st.integers(1, 4))):
        values = draw(boot_values)
        if runs and values[0] >= runs[-1][-1]:
            values = [v for v in values if v < runs[-1][-1]] or [runs[-1][-1] - 1]
            if values[0] < 0:
                continue
        runs.append(values)
    return runs


def _restart_readings(runs: list[list[int]]) -> list[Reading]:
    readings, at = [], T0
    for values in runs:
        for value in values:
            at += dt.timedelta(minutes=3)
            readings.append(Reading("solo", "", at, value))
    return readings


@given(runs=restarts(), late_picks=st.lists(st.integers(0, 1000), max_size=5))
def test_no_boot_lower_later_is_a_restart_and_lower_earlier_is_late(runs, late_picks):
    readings = _restart_readings(runs)
    assert _total(readings) == sum(values[-1] for values in runs)
    # Re-sending older readings no higher than the current value counts nothing.
    current = runs[-1][-1]
    late = [readings[p % len(readings)] for p in late_picks]
    late = [r for r in late if r.api_calls <= current]
    assert _total(readings + late) == _total(readings)


# --- the real path against the model ---------------------------------------------------------
NOW = T0 + dt.timedelta(days=2)


def _reset_usage():
    UsageReading.objects.all().delete()
    UsageRollup.objects.all().delete()
    UsageSeries.objects.all().delete()
    UsageDay.objects.all().delete()
    UsageGauge.objects.all().delete()
    UsageClosedThrough.objects.all().delete()


def _wire(r: Reading) -> dict:
    out = {
        "instance": r.instance,
        "api_calls": r.api_calls,
        "observed_at": r.observed_at.isoformat(),
    }
    if r.boot:
        out["boot"] = r.boot
    for name in ("seats", "tenants"):
        if getattr(r, name) is not None:
            out[name] = getattr(r, name)
    return out


def _send(key: str, sent: list[Reading], sizes: list[int]) -> list[dict]:
    """POST the readings in requests of these sizes (1: the single-reading endpoint);
    every reading's answer, in order."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    answers: list[dict] = []
    position = 0
    for size in sizes:
        chunk = sent[position : position + size]
        position += size
        if not chunk:
            break
        if len(chunk) == 1:
            response = client.post(
                "/api/v1/usage", _wire(chunk[0]), content_type="application/json"
            )
            assert response.status_code == 202, response.content
            answers.append(response.json())
        else:
            body = {"readings": [_wire(r) for r in chunk]}
            response = client.post("/api/v1/usage/batch", body, content_type="application/json")
            assert response.status_code == 202, response.content
            got = response.json()
            assert got["counted"] == {
                "api_calls": sum(a["counted"]["api_calls"] for a in got["results"])
            }
            answers.extend(got["results"])
    return answers


def _stored(environment) -> dict:
    return {
        "rollups": {
            (r.metric, r.hour): (
                r.total,
                r.late_total,
                r.peak,
                r.last,
                r.last_observed_at,
                r.readings,
            )
            for r in UsageRollup.objects.filter(environment=environment)
        },
        "days": {
            (d.metric, d.day): (d.total, d.peak)
            for d in UsageDay.objects.filter(environment=environment)
        },
        "gauges": {
            g.metric: (g.value, g.observed_at)
            for g in UsageGauge.objects.filter(environment=environment)
        },
    }


def _expected(model: Model) -> dict:
    return {
        "rollups": {
            k: (r.total, r.late_total, r.peak, r.last, r.last_observed_at, r.readings)
            for k, r in model.rollups.items()
        },
        "days": dict(model.days),
        "gauges": dict(model.gauges),
    }


PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(
    fleet=fleets(),
    seed=st.integers(0, 2**32),
    dupes=st.integers(0, 6),
    closed_hours=st.none() | st.integers(0, 8),
)
def test_the_http_path_answers_and_stores_what_the_model_says(
    tenant, fleet, seed, dupes, closed_hours
):
    _reset_usage()
    readings, expected = fleet
    rng = random.Random(seed)
    sent = readings + [rng.choice(readings) for _ in range(dupes)]
    rng.shuffle(sent)
    model = Model()
    if closed_hours is not None:
        # Periods closed through some instant (not always on the hour): rule 4's late path.
        closed = T0 + dt.timedelta(hours=closed_hours, minutes=rng.choice([0, 20]))
        UsageClosedThrough.objects.create(
            organization=tenant.production.project.organization, closed_through=closed
        )
        model.closed_through = closed
    sizes = [rng.choice([1, 1, 2, 5, 40]) for _ in sent]
    with time_machine.travel(NOW, tick=False):
        answers = _send(tenant.api_key, sent, sizes)
    assert answers == [model.push(r).json() for r in sent]
    assert model.counted() == expected
    assert _stored(tenant.production) == _expected(model)
    assert sum(UsageReading.objects.values_list("counted_api_calls", flat=True)) == expected
    assert UsageReading.objects.count() == len(sent)
    assert selectors.rollup_differences() == []
    assert selectors.day_differences() == []


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(runs=restarts(), seed=st.integers(0, 2**32))
def test_the_http_path_counts_boot_less_restarts_as_the_model_does(tenant, runs, seed):
    _reset_usage()
    rng = random.Random(seed)
    readings = _restart_readings(runs)
    # Some readings again, late: no higher than the current value, observed earlier.
    again = [r for r in readings if r.api_calls <= runs[-1][-1]]
    sent = readings + [rng.choice(again) for _ in range(rng.randrange(3)) if again]
    model = Model()
    sizes = [rng.choice([1, 1, 3]) for _ in sent]
    with time_machine.travel(NOW, tick=False):
        answers = _send(tenant.api_key, sent, sizes)
    assert answers == [model.push(r).json() for r in sent]
    assert model.counted() == sum(values[-1] for values in runs)
    assert UsageSeries.objects.filter(boot="").count() == len(runs)
    assert _stored(tenant.production) == _expected(model)
