"""A fleet's traffic, planned ahead from a seed, and the totals it must produce.

The plan is pure data (no Django, no I/O): every reading each simulated instance will
send, grouped into the requests each client lane sends in order, plus the totals the
counting rules of DESIGN.md say the server must end with. The expected totals are
computed by replaying the readings in the order each instance's lane delivers them
(`replay`), which is exactly rule 1 (boot series: sum over boots of the largest value)
and rule 3 (no boot: a lower value observed later is a restart).

Realism, and what keeps the expectation exact under concurrency:

- Instances with a `boot` restart with a new boot id; their readings may go to any lane,
  so duplicates of one series race each other on the server (rule 2 makes order moot).
- Instances without a `boot` restart by sending a lower value; the server can only tell a
  restart from a late reading by order and `observed_at` (rule 3), so all of such an
  instance's readings go through one lane, in order per generation: readings of a
  generation are shuffled and duplicated only among themselves, and the first reading of
  the next generation (lower than anything before it) comes after all of them.
- Heartbeats repeat the last value; seats and tenants follow one timeline per environment
  and ride on some readings. A final heartbeat of every instance, sent after everything
  else, carries the environment's final seats and tenants, so "last" is unambiguous.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_BATCH = 1000


@dataclass(frozen=True)
class Reading:
    """One reading as an instance sends it (`env` is the environment's index)."""

    env: int
    instance: str
    boot: str | None
    observed_at: dt.datetime
    api_calls: int
    seats: int | None = None
    tenants: int | None = None

    def body(self) -> dict:
        out: dict = {"instance": self.instance}
        if self.boot is not None:
            out["boot"] = self.boot
        out["observed_at"] = self.observed_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out["api_calls"] = self.api_calls
        if self.seats is not None:
            out["seats"] = self.seats
        if self.tenants is not None:
            out["tenants"] = self.tenants
        return out


@dataclass(frozen=True)
class Request:
    """One HTTP request: one reading (`batch` False) or a batch, all of one environment."""

    env: int
    readings: tuple[Reading, ...]
    batch: bool

    def payload(self) -> bytes:
        if self.batch:
            doc: dict = {"readings": [r.body() for r in self.readings]}
        else:
            doc = self.readings[0].body()
        return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True)
class GaugeTotals:
    max: int | None
    last: int | None


@dataclass(frozen=True)
class EnvTotals:
    api_calls: int
    seats: GaugeTotals
    tenants: GaugeTotals


@dataclass(frozen=True)
class FleetSpec:
    environments: int
    instances: int  # per environment
    minutes: int
    seed: int
    end: dt.datetime  # the last reading's observed_at (aware, UTC)
    run_id: str = "run"  # part of every instance name, so each run has fresh series
    lanes: int = 8
    batch: bool = False
    batch_size: int = 100
    interval_seconds: int = 60
    restart_rate: float = 0.01  # per instance and interval
    no_boot_share: float = 0.25  # instances that never send a boot
    duplicate_rate: float = 0.05  # readings sent twice (a client retry)
    late_rate: float = 0.05  # readings delivered after later ones
    gauge_rate: float = 0.2  # readings that carry seats and tenants
    idle_rate: float = 0.2  # intervals with no calls (a heartbeat)
    rates: tuple[int, ...] = (0, 3, 20, 60, 200, 1000, 5000)  # mean calls per interval
    seats_range: tuple[int, int] = (1, 40)
    tenants_range: tuple[int, int] = (1, 8)

    def __post_init__(self) -> None:
        if self.environments < 1 or self.instances < 1 or self.minutes < 1 or self.lanes < 1:
            raise ValueError("environments, instances, minutes and lanes must be at least 1")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")


@dataclass
class Plan:
    spec: FleetSpec
    # lanes[i] is what client lane i sends, in order; `final` goes after all lanes finish.
    lanes: list[list[Request]]
    final: list[list[Request]]
    expected: dict[int, EnvTotals]
    # The truth the generator knows (generation of every reading), for tests.
    true_api_calls: dict[int, int] = field(default_factory=dict)

    @property
    def start(self) -> dt.datetime:
        return self.spec.end - dt.timedelta(seconds=self.spec.interval_seconds * self.spec.minutes)

    def readings_count(self) -> int:
        return sum(len(r.readings) for lane in (*self.lanes, *self.final) for r in lane)

    def requests_count(self) -> int:
        return sum(len(lane) for lane in (*self.lanes, *self.final))

    def expected_overall(self) -> int:
        return sum(t.api_calls for t in self.expected.values())


# --- the counting rules, replayed -------------------------------------------------------
def replay(readings: Iterable[Reading]) -> dict[int, EnvTotals]:
    """What the server must count for these readings delivered in this order.

    Rule 1 for boot series; rule 3 for instances without a boot; gauges: the maximum,
    and the value of the reading with the latest `observed_at` (receipt order on ties)."""
    highest: dict[tuple, int] = {}
    last_seen: dict[tuple, dt.datetime] = {}
    counted: dict[int, int] = defaultdict(int)
    gauges: dict[tuple[int, str], tuple[int, int, dt.datetime]] = {}  # max, last, last_at
    envs: set[int] = set()
    for r in readings:
        envs.add(r.env)
        key = (r.env, r.instance, r.boot)
        if (
            r.boot is None
            and key in highest
            and r.api_calls < highest[key]
            and r.observed_at > last_seen[key]
        ):
            highest[key] = 0  # rule 3: a restart, a new implicit boot
        previous = highest.get(key, 0)
        if r.api_calls > previous:
            counted[r.env] += r.api_calls - previous
            highest[key] = r.api_calls
        else:
            highest.setdefault(key, previous)
        if key not in last_seen or r.observed_at > last_seen[key]:
            last_seen[key] = r.observed_at
        for metric in ("seats", "tenants"):
            value = getattr(r, metric)
            if value is None:
                continue
            old = gauges.get((r.env, metric))
            if old is None:
                gauges[(r.env, metric)] = (value, value, r.observed_at)
            else:
                peak, last, last_at = old
                if r.observed_at >= last_at:
                    last, last_at = value, r.observed_at
                gauges[(r.env, metric)] = (max(peak, value), last, last_at)

    def gauge(env: int, metric: str) -> GaugeTotals:
        g = gauges.get((env, metric))
        return GaugeTotals(g[0], g[1]) if g else GaugeTotals(None, None)

    return {
        env: EnvTotals(counted[env], gauge(env, "seats"), gauge(env, "tenants"))
        for env in sorted(envs)
    }


def delivery_order(plan_lanes: Sequence[Sequence[Request]]) -> list[Reading]:
    """Readings in an order consistent with what the server sees: per instance without
    a boot, its lane's order (the only order that matters, see module docstring)."""
    return [reading for lane in plan_lanes for request in lane for reading in request.readings]


# --- generation -------------------------------------------------------------------------
@dataclass
class _Instance:
    env: int
    name: str
    uses_boot: bool
    rate: int  # mean calls per interval
    lane: int
    boot: str | None = None
    value: int = 0
    # Readings per segment: a segment is one generation of a no-boot instance, or the
    # whole life of a boot instance (boots may interleave freely).
    segments: list[list[Reading]] = field(default_factory=list)
    generation_max: list[int] = field(default_factory=list)


def _gauge_timeline(rng: random.Random, steps: int, low: int, high: int) -> list[int]:
    value = rng.randint(low, high)
    out = []
    for _ in range(steps + 1):
        if rng.random() < 0.08:
            value = min(high, max(low, value + rng.choice((-2, -1, 1, 1, 2, 3))))
        out.append(value)
    return out


def _shuffle_segment(
    rng: random.Random, readings: list[Reading], spec: FleetSpec, *, keep_first: bool
) -> list[Reading]:
    """Duplicates and late delivery confined to one segment."""
    out = list(readings)
    for i, reading in enumerate(readings):
        if rng.random() < spec.duplicate_rate:
            # A retry: the same reading again, a little later in the stream.
            out.insert(min(len(out), i + 1 + rng.randint(0, 5)), reading)
    start = 1 if keep_first else 0
    for i in range(start, len(out)):
        if rng.random() < spec.late_rate:
            j = min(len(out) - 1, i + rng.randint(1, 10))
            out[i], out[j] = out[j], out[i]
    return out


def build_plan(spec: FleetSpec) -> Plan:
    rng = random.Random(spec.seed)
    steps = spec.minutes
    start = spec.end - dt.timedelta(seconds=spec.interval_seconds * steps)
    seats = {e: _gauge_timeline(rng, steps, *spec.seats_range) for e in range(spec.environments)}
    tenants = {
        e: _gauge_timeline(rng, steps, *spec.tenants_range) for e in range(spec.environments)
    }

    instances: list[_Instance] = []
    for env in range(spec.environments):
        for n in range(spec.instances):
            uses_boot = rng.random() >= spec.no_boot_share
            rate = rng.choice(spec.rates)
            inst = _Instance(
                env=env,
                name=f"sim-{spec.run_id}-e{env}-i{n}",
                uses_boot=uses_boot,
                rate=rate,
                lane=rng.randrange(spec.lanes),
            )
            inst.boot = f"{spec.run_id}-{rng.getrandbits(48):012x}" if uses_boot else None
            inst.segments.append([])
            inst.generation_max.append(0)
            instances.append(inst)

    # Readings, minute by minute, with restarts.
    timeline: list[tuple[dt.datetime, int, Reading]] = []  # for a near-chronological merge
    truth: dict[int, int] = defaultdict(int)
    boot_max: dict[tuple[int, str, str], int] = {}
    for step in range(steps):
        base = start + dt.timedelta(seconds=spec.interval_seconds * step)
        for idx, inst in enumerate(instances):
            at = base + dt.timedelta(
                seconds=rng.randrange(spec.interval_seconds), microseconds=rng.randrange(10**6)
            )
            if step > 0 and rng.random() < spec.restart_rate:
                if inst.uses_boot:
                    inst.boot = f"{spec.run_id}-{rng.getrandbits(48):012x}"
                    inst.value = 0
                elif inst.value > 0:
                    # Rule 3 sees a restart only if the value drops: a counter restarting
                    # at 0 sends less than it had reached.
                    inst.value = 0
                    inst.segments.append([])
                    inst.generation_max.append(0)
            if rng.random() >= spec.idle_rate and inst.rate:
                inst.value += rng.randint(1, 2 * inst.rate)
            if not inst.uses_boot and len(inst.segments) > 1 and not inst.segments[-1]:
                # The first reading of a new generation must be below the old one's top.
                inst.value = min(inst.value, inst.generation_max[-2] - 1)
            carry = rng.random() < spec.gauge_rate
            reading = Reading(
                env=inst.env,
                instance=inst.name,
                boot=inst.boot,
                observed_at=at,
                api_calls=inst.value,
                seats=seats[inst.env][step] if carry else None,
                tenants=tenants[inst.env][step] if carry else None,
            )
            inst.segments[-1].append(reading)
            inst.generation_max[-1] = max(inst.generation_max[-1], inst.value)
            if inst.boot is not None:
                key = (inst.env, inst.name, inst.boot)
                boot_max[key] = max(boot_max.get(key, 0), inst.value)
            timeline.append((at, idx, reading))
    for (env, _name, _boot), top in boot_max.items():
        truth[env] += top
    for inst in instances:
        if not inst.uses_boot:
            truth[inst.env] += sum(inst.generation_max)

    # Per instance: duplicates and late delivery within segments.
    streams: dict[int, list[Reading]] = {}
    for idx, inst in enumerate(instances):
        stream: list[Reading] = []
        for segment in inst.segments:
            stream.extend(_shuffle_segment(rng, segment, spec, keep_first=not inst.uses_boot))
        streams[idx] = stream

    # Merge instances' streams round-robin (near-chronological) into lanes: a no-boot
    # instance always uses its own lane, a boot instance any lane.
    lane_readings: list[list[Reading]] = [[] for _ in range(spec.lanes)]
    cursors = dict.fromkeys(streams, 0)
    while cursors:
        for idx in list(cursors):
            stream, pos = streams[idx], cursors[idx]
            if pos >= len(stream):
                del cursors[idx]
                continue
            inst = instances[idx]
            lane = inst.lane if not inst.uses_boot else rng.randrange(spec.lanes)
            lane_readings[lane].append(stream[pos])
            cursors[idx] = pos + 1

    lanes = [_requests(readings, spec) for readings in lane_readings]

    # The final heartbeat of every instance: after everything, environment's last gauges.
    final_readings: list[list[Reading]] = [[] for _ in range(spec.lanes)]
    for inst in instances:
        final_readings[inst.lane].append(
            Reading(
                env=inst.env,
                instance=inst.name,
                boot=inst.boot,
                observed_at=spec.end,
                api_calls=inst.value,
                seats=seats[inst.env][steps],
                tenants=tenants[inst.env][steps],
            )
        )
    final = [_requests(readings, spec) for readings in final_readings]

    expected = replay(delivery_order(lanes) + delivery_order(final))
    for env in range(spec.environments):
        expected.setdefault(env, EnvTotals(0, GaugeTotals(None, None), GaugeTotals(None, None)))
    return Plan(spec=spec, lanes=lanes, final=final, expected=expected, true_api_calls=dict(truth))


def _requests(readings: list[Reading], spec: FleetSpec) -> list[Request]:
    """One request per reading, or batches of one environment each, in lane order."""
    if not spec.batch:
        return [Request(r.env, (r,), False) for r in readings]
    out: list[Request] = []
    pending: dict[int, list[Reading]] = defaultdict(list)
    for reading in readings:
        buffer = pending[reading.env]
        buffer.append(reading)
        if len(buffer) >= spec.batch_size:
            out.append(Request(reading.env, tuple(buffer), True))
            pending[reading.env] = []
    for env, buffer in pending.items():
        if buffer:
            out.append(Request(env, tuple(buffer), True))
    return out
