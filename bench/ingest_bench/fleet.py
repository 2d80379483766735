"""The two simulated fleets: single readings and batches, on disjoint environments."""

from __future__ import annotations

import argparse
import datetime as dt


def specs(args: argparse.Namespace, end: dt.datetime) -> dict[str, dict]:
    """Single and batch phases on disjoint environments. Sized so each phase sends about
    the asked number of readings (one per instance per simulated minute, ~5 % duplicates)."""
    single_envs, single_instances = 16, 8
    batch_envs, batch_instances = 8, 50
    per_minute = 1.05
    return {
        "single": {
            "environments": single_envs,
            "instances": single_instances,
            "minutes": max(
                1, round(args.single_readings / (single_envs * single_instances * per_minute))
            ),
            "seed": args.seed,
            "run_id": "single",
            "lanes": args.clients,
            "batch": False,
            "end": end.isoformat(),
            "env_offset": 0,
        },
        "batch": {
            "environments": batch_envs,
            "instances": batch_instances,
            "minutes": max(
                1, round(args.batch_readings / (batch_envs * batch_instances * per_minute))
            ),
            "seed": args.seed + 1,
            "run_id": "batch",
            "lanes": args.clients,
            "batch": True,
            "batch_size": args.batch_size,
            "end": end.isoformat(),
            "env_offset": single_envs,
        },
    }


def build(spec: dict):
    from tools.fleet.plan import FleetSpec, build_plan

    fields = {k: v for k, v in spec.items() if k != "env_offset"}
    fields["end"] = dt.datetime.fromisoformat(spec["end"])
    return build_plan(FleetSpec(**fields))
