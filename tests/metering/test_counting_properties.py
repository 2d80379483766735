"""The counting rules as properties (hypothesis): any order, any repetition, several boots;
the no-boot restart rule; rollups summing to the total; recompute agreeing."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from metering import counting, ingest, selectors
from metering.counting import Reading
from metering.models import UsageDay, UsageReading, UsageRollup, UsageSeries

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
                readings.append(Reading(f"i{instance}", f"b{boot}", observed, value, seats))
    return readings, expected


def _pure_total(batches: list[list[Reading]]) -> tuple[int, list[counting.Outcome]]:
    """Run batches through the pure rules with in-memory series (the reference model)."""
    series: dict[counting.SeriesKey, tuple[int, dt.datetime]] = {}
    heads: dict[str, counting.SeriesHead] = {}
    out: list[counting.Outcome] = []
    for batch in batches:
        keys = counting.choose_series(batch, heads)
        before = {
            k: counting.Before(k not in series, *(series.get(k, (0, None)))) for k in set(keys)
        }
        results = counting.outcomes(batch, keys, before, known_instances=set(), closed_through=None)
        for r, k in zip(batch, keys, strict=True):
            highest, seen = series.get(k, (0, r.observed_at))
            series[k] = (max(highest, r.api_calls), max(seen, r.observed_at))
            if not k[1]:
                heads[k[0]] = counting.SeriesHead(k[2], *series[k])
        out.extend(results)
    return sum(o.counted for o in out), out


@given(fleet=fleets(), seed=st.integers(0, 2**32), dupes=st.integers(0, 10))
def test_any_order_and_repetition_counts_the_sum_of_each_boots_maximum(fleet, seed, dupes):
    readings, expected = fleet
    rng = random.Random(seed)
    sent = readings + [rng.choice(readings) for _ in range(dupes)]
    rng.shuffle(sent)
    cut = sorted(rng.sample(range(len(sent) + 1), k=min(3, len(sent) + 1)))
    batches = [sent[a:b] for a, b in zip([0, *cut], [*cut, len(sent)], strict=True) if sent[a:b]]
    total, outcomes = _pure_total(batches)
    assert total == expected
    assert all(o.counted >= 0 for o in outcomes)


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


@given(runs=restarts(), late_picks=st.lists(st.integers(0, 1000), max_size=5))
def test_no_boot_lower_later_is_a_restart_and_lower_earlier_is_late(runs, late_picks):
    readings, at = [], T0
    for values in runs:
        for value in values:
            at += dt.timedelta(minutes=3)
            readings.append(Reading("solo", "", at, value))
    total, _ = _pure_total([readings])
    assert total == sum(values[-1] for values in runs)
    # Re-sending older readings no higher than the current value counts nothing.
    current = runs[-1][-1]
    late = [readings[p % len(readings)] for p in late_picks]
    late = [r for r in late if r.api_calls <= current]
    total_after, _ = _pure_total([readings, late] if late else [readings])
    assert total_after == total


# --- the same properties through the database (both ingest paths) ---------------------------
def _reset_usage():
    UsageReading.objects.all().delete()
    UsageRollup.objects.all().delete()
    UsageSeries.objects.all().delete()
    UsageDay.objects.all().delete()


@pytest.mark.django_db
@pytest.mark.parametrize("fast", [True, False])
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fleet=fleets(), seed=st.integers(0, 2**32), dupes=st.integers(0, 6))
def test_stored_counts_rollups_and_recompute_agree(tenant, settings, fast, fleet, seed, dupes):
    from django.db import connection

    if fast and connection.vendor != "postgresql":
        pytest.skip("the SQL fast path runs on PostgreSQL only")
    settings.INGEST_SQL_FAST_PATH = fast
    _reset_usage()
    readings, expected = fleet
    rng = random.Random(seed)
    sent = readings + [rng.choice(readings) for _ in range(dupes)]
    rng.shuffle(sent)
    now = timezone.now()
    counted = 0
    position = 0
    while position < len(sent):
        size = rng.choice([1, 1, 2, 5])
        chunk = sent[position : position + size]
        position += size
        result = ingest.record(plaintext=tenant.api_key, readings=chunk, now=now, single=size == 1)
        assert isinstance(result, ingest.Recorded)
        counted += sum(o.counted for o in result.outcomes)
    assert counted == expected
    assert (
        sum(UsageRollup.objects.filter(metric="api_calls").values_list("total", flat=True))
        == expected
    )
    assert sum(UsageReading.objects.values_list("counted_api_calls", flat=True)) == expected
    assert UsageReading.objects.count() == len(sent)
    assert selectors.rollup_differences() == []
    assert selectors.day_differences() == []  # each day is the sum and max of its hours


@pytest.mark.django_db
@pytest.mark.parametrize("fast", [True, False])
@hypothesis_settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(runs=restarts(), seed=st.integers(0, 2**32))
def test_stored_no_boot_restarts_count_each_runs_maximum(tenant, settings, fast, runs, seed):
    from django.db import connection

    if fast and connection.vendor != "postgresql":
        pytest.skip("the SQL fast path runs on PostgreSQL only")
    settings.INGEST_SQL_FAST_PATH = fast
    _reset_usage()
    readings, at = [], T0
    for values in runs:
        for value in values:
            at += dt.timedelta(minutes=3)
            readings.append(Reading("solo", "", at, value))
    rng = random.Random(seed)
    now = timezone.now()
    position = 0
    while position < len(readings):
        size = rng.choice([1, 1, 3])
        chunk = readings[position : position + size]
        position += size
        result = ingest.record(plaintext=tenant.api_key, readings=chunk, now=now, single=size == 1)
        assert isinstance(result, ingest.Recorded)
    expected = sum(values[-1] for values in runs)
    assert sum(UsageReading.objects.values_list("counted_api_calls", flat=True)) == expected
    assert (
        sum(UsageRollup.objects.filter(metric="api_calls").values_list("total", flat=True))
        == expected
    )
    assert UsageSeries.objects.filter(boot="").count() == len(runs)
    assert selectors.rollup_differences() == []
    assert selectors.day_differences() == []  # each day is the sum and max of its hours
