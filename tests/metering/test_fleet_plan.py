"""The fleet plan's expected totals: the counting rules replayed (pure, no server)."""

import datetime as dt
import itertools
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tools.fleet.plan import (
    EnvTotals,
    FleetSpec,
    GaugeTotals,
    Reading,
    build_plan,
    delivery_order,
    replay,
)

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
NO_GAUGES = GaugeTotals(None, None)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def r(value, minute, *, boot="b1", instance="i1", env=0, seats=None, tenants=None):
    return Reading(env, instance, boot, at(minute), value, seats, tenants)


def spec(**overrides) -> FleetSpec:
    return FleetSpec(
        **{
            "environments": 3,
            "instances": 4,
            "minutes": 40,
            "seed": 7,
            "end": at(60),
            **overrides,
        }
    )


def test_a_boot_series_counts_its_largest_value_whatever_the_order_and_repeats():
    readings = [r(10, 1), r(25, 2), r(40, 3), r(25, 2), r(10, 1), r(40, 3)]
    assert replay(readings)[0].api_calls == 40
    assert replay(reversed(readings))[0].api_calls == 40


def test_boots_add_up_each_boots_largest_value():
    readings = [r(10, 1), r(30, 2), r(5, 3, boot="b2"), r(12, 4, boot="b2"), r(20, 1.5)]
    assert replay(readings)[0].api_calls == 30 + 12


def test_no_boot_lower_value_observed_later_is_a_restart():
    readings = [r(100, 1, boot=None), r(150, 2, boot=None), r(7, 3, boot=None), r(9, 4, boot=None)]
    assert replay(readings)[0].api_calls == 150 + 9


def test_no_boot_lower_value_observed_earlier_is_late_and_counts_nothing():
    readings = [r(100, 1, boot=None), r(150, 3, boot=None), r(120, 2, boot=None)]
    assert replay(readings)[0].api_calls == 150


def test_no_boot_duplicate_counts_nothing():
    readings = [r(100, 1, boot=None), r(100, 1, boot=None), r(150, 2, boot=None)]
    assert replay(readings)[0].api_calls == 150


def test_instances_and_environments_are_counted_apart():
    readings = [r(10, 1), r(20, 1, instance="i2"), r(5, 1, env=1), r(10, 2)]
    totals = replay(readings)
    assert totals[0].api_calls == 30
    assert totals[1].api_calls == 5


def test_gauges_max_and_last_by_observed_at():
    readings = [
        r(1, 1, seats=5, tenants=2),
        r(2, 3, seats=3, tenants=1),
        r(3, 2, seats=9),  # late: raises the max, not the last
    ]
    assert replay(readings)[0] == EnvTotals(3, GaugeTotals(9, 3), GaugeTotals(2, 1))
    assert replay([r(1, 1)])[0] == EnvTotals(1, NO_GAUGES, NO_GAUGES)


def test_plan_is_deterministic_for_a_seed():
    a, b = build_plan(spec()), build_plan(spec())
    assert [[q.payload() for q in lane] for lane in a.lanes] == [
        [q.payload() for q in lane] for lane in b.lanes
    ]
    assert a.expected == b.expected
    assert build_plan(spec(seed=8)).expected != a.expected


def test_plan_expected_totals_equal_sum_over_boots_of_max():
    plan = build_plan(spec(restart_rate=0.1, duplicate_rate=0.2, late_rate=0.2))
    assert {env: t.api_calls for env, t in plan.expected.items()} == plan.true_api_calls
    assert plan.expected_overall() == sum(plan.true_api_calls.values()) > 0


def test_plan_has_restarts_duplicates_late_readings_heartbeats_and_gauges():
    plan = build_plan(spec(restart_rate=0.1, duplicate_rate=0.2, late_rate=0.2))
    sent = delivery_order(plan.lanes)
    boots = {(x.instance, x.boot) for x in sent if x.boot is not None}
    instances_with_boot = {x.instance for x in sent if x.boot is not None}
    assert len(boots) > len(instances_with_boot)  # new boots
    assert any(x.boot is None for x in sent)  # instances without a boot
    assert len(sent) > len(set(sent))  # duplicates
    by_instance: dict[str, list[Reading]] = {}
    for x in sent:
        by_instance.setdefault(x.instance, []).append(x)
    assert any(
        later.observed_at < earlier.observed_at
        for stream in by_instance.values()
        for earlier, later in itertools.pairwise(stream)
    )  # out of order
    assert any(
        later.api_calls == earlier.api_calls and later.observed_at > earlier.observed_at
        for stream in by_instance.values()
        for earlier, later in itertools.pairwise(stream)
    )  # heartbeats
    seats = {x.seats for x in sent if x.seats is not None}
    assert len(seats) > 1
    # The final heartbeats carry the last gauges, one per instance.
    final = delivery_order(plan.final)
    assert len(final) == 3 * 4
    assert all(x.observed_at == at(60) and x.seats is not None for x in final)


def test_no_boot_instances_use_one_lane_and_batches_one_environment():
    plan = build_plan(spec(batch=True, batch_size=7))
    lanes_of: dict[str, set[int]] = {}
    for i, lane in enumerate(plan.lanes):
        for request in lane:
            assert request.batch and 1 <= len(request.readings) <= 7
            assert {x.env for x in request.readings} == {request.env}
            for x in request.readings:
                if x.boot is None:
                    lanes_of.setdefault(x.instance, set()).add(i)
    assert lanes_of and all(len(lanes) == 1 for lanes in lanes_of.values())
    body = json.loads(plan.lanes[0][0].payload())
    assert set(body) == {"readings"}
    assert body["readings"][0]["observed_at"].endswith("Z")


def test_single_payload_is_one_reading_with_only_known_fields():
    plan = build_plan(spec())
    bodies = [json.loads(q.payload()) for lane in plan.lanes for q in lane]
    fields = set().union(*bodies)
    assert fields == {"instance", "boot", "observed_at", "api_calls", "seats", "tenants"}
    assert all(not q.batch for lane in plan.lanes for q in lane)
    assert all(dt.datetime.fromisoformat(b["observed_at"]) < at(60) for b in bodies)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    envs=st.integers(1, 3),
    instances=st.integers(1, 4),
    minutes=st.integers(1, 30),
    restart=st.floats(0, 0.3),
    dup=st.floats(0, 0.3),
    late=st.floats(0, 0.3),
    batch=st.booleans(),
)
def test_any_plan_expects_the_true_sum_over_boots_of_max(
    seed, envs, instances, minutes, restart, dup, late, batch
):
    plan = build_plan(
        spec(
            seed=seed,
            environments=envs,
            instances=instances,
            minutes=minutes,
            restart_rate=restart,
            duplicate_rate=dup,
            late_rate=late,
            batch=batch,
            batch_size=5,
            lanes=3,
        )
    )
    assert {e: plan.expected[e].api_calls for e in range(envs)} == {
        e: plan.true_api_calls.get(e, 0) for e in range(envs)
    }


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False))
def test_boot_series_totals_do_not_depend_on_delivery_order(rnd: random.Random):
    plan = build_plan(spec(no_boot_share=0.0, restart_rate=0.1))
    sent = delivery_order(plan.lanes)
    rnd.shuffle(sent)
    assert {e: t.api_calls for e, t in replay(sent).items()} == plan.true_api_calls
