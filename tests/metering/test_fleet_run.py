"""The simulator's comparison of server totals with the plan's (pure): a reused
environment's history is a baseline, not a difference."""

import json

import pytest

from tools.fleet.plan import EnvTotals, GaugeTotals
from tools.fleet.run import FleetError, compare, load_keys


def totals(calls, seats=(None, None), tenants=(None, None)):
    return EnvTotals(calls, GaugeTotals(*seats), GaugeTotals(*tenants))


def test_increase_over_the_baseline_must_equal_the_plan():
    check = compare(
        "env", totals(100, (9, 4), (3, 2)), totals(50, (12, 7)), totals(150, (12, 4), (3, 2))
    )
    assert check.problems == []
    assert check.expected == totals(100, (12, 4), (3, 2))
    assert check.server == totals(100, (12, 4), (3, 2))


def test_any_difference_is_named():
    check = compare("env", totals(100, (9, 4)), totals(0), totals(101, (9, 5)))
    assert check.problems == [
        "api_calls: expected 100, server 101",
        "seats: expected max 9 last 4, server max 9 last 5",
    ]


def test_keys_file_object_or_list(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"acme/web/production": "cpk_a", "acme/web/ci": "cpk_b"}))
    assert [(e.label, e.key) for e in load_keys(path)] == [
        ("acme/web/production", "cpk_a"),
        ("acme/web/ci", "cpk_b"),
    ]
    path.write_text(json.dumps(["cpk_a"]))
    assert [(e.label, e.key) for e in load_keys(path)] == [("env-0", "cpk_a")]
    path.write_text("[]")
    with pytest.raises(FleetError, match="holds no keys"):
        load_keys(path)
    path.write_text("{not json")
    with pytest.raises(FleetError, match="cannot read keys"):
        load_keys(path)
