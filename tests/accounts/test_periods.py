import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from accounts.periods import period_containing, policy_cap

UTC = dt.UTC


def at(y, m, d, h=0):
    return dt.datetime(y, m, d, h, tzinfo=UTC)


def test_period_is_anchored_on_the_start_day():
    p = period_containing(dt.date(2026, 1, 15), at(2026, 3, 20, 13))
    assert (p.start, p.end) == (at(2026, 3, 15), at(2026, 4, 15))
    p = period_containing(dt.date(2026, 1, 15), at(2026, 3, 14, 23))
    assert (p.start, p.end) == (at(2026, 2, 15), at(2026, 3, 15))


def test_anchor_on_the_31st_uses_the_last_day_of_short_months():
    anchor = dt.date(2026, 1, 31)
    assert period_containing(anchor, at(2026, 2, 10)).start == at(2026, 1, 31)
    assert period_containing(anchor, at(2026, 2, 10)).end == at(2026, 2, 28)
    assert period_containing(anchor, at(2026, 3, 1)).start == at(2026, 2, 28)
    assert period_containing(anchor, at(2026, 3, 1)).end == at(2026, 3, 31)


def test_period_start_is_inclusive_and_end_exclusive():
    anchor = dt.date(2026, 1, 1)
    assert period_containing(anchor, at(2026, 5, 1)).start == at(2026, 5, 1)
    assert period_containing(anchor, at(2026, 5, 1) - dt.timedelta(microseconds=1)).end == at(
        2026, 5, 1
    )


@given(
    anchor=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)),
    moment=st.datetimes(
        min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_periods_tile_time(anchor, moment):
    p = period_containing(anchor, moment)
    assert moment in p
    assert 28 <= (p.end - p.start).days <= 31
    # the next period starts where this one ends
    assert period_containing(anchor, p.end).start == p.end
    assert period_containing(anchor, p.start - dt.timedelta(microseconds=1)).end == p.start


def test_policy_cap():
    assert policy_cap(10, "block", None) == 10
    assert policy_cap(10, "allow", None) is None
    assert policy_cap(10, "allow_up_to", Decimal("1.25")) == 12
    assert policy_cap(10, "allow_up_to", Decimal("1.1")) == 11
    assert policy_cap(3, "allow_up_to", Decimal("1.5")) == 4
