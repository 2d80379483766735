"""The per-key abuse throttle: counts reach the shared cache in steps of 1/1000 of the
limit, so the hot path rarely pays a cache round trip."""

from __future__ import annotations

from django.core.cache import cache

from metering.throttle import throttle_retry_after

T = 1_800_000_000.0  # a window start for a 60 s window


def test_counts_reach_the_shared_counter_in_steps(settings):
    settings.USAGE_THROTTLE_REQUESTS = 10_000  # step of 10
    settings.USAGE_THROTTLE_WINDOW_SECONDS = 60
    for n in range(25):
        assert throttle_retry_after("stepkey00001", now=T + n) is None
    assert cache.get(f"usage-throttle:stepkey00001:{int(T // 60)}") == 20


def test_over_the_limit_answers_seconds_to_the_next_window(settings):
    settings.USAGE_THROTTLE_REQUESTS = 3
    settings.USAGE_THROTTLE_WINDOW_SECONDS = 60
    answers = [throttle_retry_after("limitkey0001", now=T + 15) for _ in range(4)]
    assert answers == [None, None, None, 45]
    # A new window starts afresh.
    assert throttle_retry_after("limitkey0001", now=T + 60) is None


def test_zero_turns_the_throttle_off(settings):
    settings.USAGE_THROTTLE_REQUESTS = 0
    assert all(throttle_retry_after("offkey000001", now=T) is None for _ in range(50))
