"""Packed binary arrays: what PostgreSQL reads back is what was packed."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from metering.compliance import sql


def round_trip(array, pg_type: str) -> list:
    with sql.array_cursor() as cursor:
        cursor.execute(
            f"SELECT x FROM unnest(%b::{pg_type}[]) WITH ORDINALITY AS u(x, n) ORDER BY n", [array]
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_bigints_with_nulls_and_extremes():
    values = [0, -1, 1, 2**63 - 1, -(2**63), None, 42, None]
    assert round_trip(sql.int8_array(values), "bigint") == values


@pytest.mark.django_db
def test_text_with_nulls_unicode_and_repeats():
    values = ["seats", "", None, "zürich/prod ✓", "seats", 'quote " and \\ backslash', None]
    assert round_trip(sql.text_array(values), "text") == values


@pytest.mark.django_db
def test_timestamps_keep_their_instant_to_the_microsecond():
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    values = [
        dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        None,
        dt.datetime(2026, 11, 24, 12, 0, 0, 250, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),  # before PG's epoch
        dt.datetime(2026, 7, 1, 2, 30, tzinfo=paris),  # same instant as 00:30 UTC
        dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    ]
    assert round_trip(sql.timestamptz_array(values), "timestamptz") == values


@pytest.mark.django_db
def test_booleans_and_empty_arrays():
    assert round_trip(sql.bool_array([True, False, None, True]), "boolean") == [
        True,
        False,
        None,
        True,
    ]
    assert round_trip(sql.int8_array([]), "bigint") == []
    assert round_trip(sql.text_array([]), "text") == []


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive"):
        sql.timestamptz_array([dt.datetime(2026, 11, 1)])
