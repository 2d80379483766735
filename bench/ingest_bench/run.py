"""The measured run: set-up, both phases, the raw bound, the report."""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from bench.ingest_bench.config import (
    ROOT,
    TARGETS,
    app_env,
    db_url,
    drop,
    manage,
    parse_args,
    recreate,
    settle,
)
from bench.ingest_bench.fleet import build, specs
from bench.ingest_bench.raw import record, replay, unlink_series
from bench.ingest_bench.server import cpu_delta, cpu_snapshot, gunicorn


def main(argv: list[str]) -> int:
    if argv[:1] == ["_record"]:
        record(Path(argv[1]), Path(argv[2]), Path(argv[3]), json.loads(argv[4]))
        return 0
    args = parse_args(argv)
    from bench.wire import WireClients, wire_lanes
    from tools.fleet.run import FleetEnvironment, compare, fetch_totals, totals_window
    from tools.fleet.transport import HttpTransport, send_lanes

    base_name = urlsplit(args.database_url).path.lstrip("/") or "cp"
    main_db, rec_db, raw_db = (
        f"{base_name}_bench",
        f"{base_name}_bench_rec",
        f"{base_name}_bench_raw",
    )
    main_url = db_url(args.database_url, main_db)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    print(
        f"databases {main_db} (+ _rec, _raw); gunicorn {args.workers} x {args.worker_class}"
        f" ({args.threads} threads) on 127.0.0.1:{args.port}; {args.clients} clients ({args.client})",
        flush=True,
    )

    recreate(args.database_url, main_db)
    manage(main_url, "migrate", "--noinput")
    phases = specs(args, dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=30))
    n_envs = sum(s["environments"] for s in phases.values())
    keys_file = work / "keys.json"
    manage(
        main_url,
        "simulate_fleet",
        "--provision",
        "--environments",
        str(n_envs),
        "--run-id",
        "bench",
        "--keys-file",
        str(keys_file),
    )
    environments = [FleetEnvironment(k, v) for k, v in json.loads(keys_file.read_text()).items()]
    if not args.skip_raw:
        recreate(args.database_url, rec_db, template=main_db)
        recreate(args.database_url, raw_db, template=main_db)
        unlink_series(db_url(args.database_url, raw_db))
    settle(args.database_url)

    print("building plans ...", flush=True)
    plans = {phase: build(spec) for phase, spec in phases.items()}
    failures: list[str] = []
    results: dict[str, dict] = {}
    with gunicorn(args, main_url) as server:
        transport = HttpTransport(f"http://127.0.0.1:{args.port}")
        for phase, plan in plans.items():
            offset = phases[phase]["env_offset"]
            keys = [e.key for e in environments[offset : offset + plan.spec.environments]]
            payloads = [[r.payload() for r in lane] for lane in plan.lanes]
            window = totals_window(plan)
            baselines = [fetch_totals(transport, k, window) for k in keys]
            print(
                f"{phase}: sending {plan.readings_count():,} readings in {plan.requests_count():,} requests ...",
                flush=True,
            )
            if args.client == "wire":  # serialized and forked before the clock starts
                clients = WireClients(
                    "127.0.0.1",
                    args.port,
                    wire_lanes("127.0.0.1", args.port, plan.lanes, keys, payloads),
                    args.client_processes,
                )
            cpu_before = cpu_snapshot(args.database_url, main_db, server.pid)
            if args.client == "wire":
                run = clients.run()
                stats = run.stats
            else:
                stats = send_lanes(transport, plan.lanes, keys, payloads=payloads)
            cpu = cpu_delta(cpu_before, cpu_snapshot(args.database_url, main_db, server.pid))
            if args.client == "wire":
                cpu["clients"] += run.cpu_seconds  # the client processes, first request to last
            final = send_lanes(transport, plan.final, keys)
            checks = [
                compare(
                    environments[offset + i].label,
                    plan.expected[i],
                    baselines[i],
                    fetch_totals(transport, k, window),
                )
                for i, k in enumerate(keys)
            ]
            errors = stats.errors + final.errors
            problems = [f"{c.label}: {p}" for c in checks for p in c.problems]
            failures += errors[:5] + problems
            results[phase] = {
                "readings": stats.readings,
                "requests": stats.requests,
                "seconds": stats.seconds,
                "rps": stats.readings_per_second,
                "p50": stats.percentile(50) * 1000,
                "p95": stats.percentile(95) * 1000,
                "p99": stats.percentile(99) * 1000,
                "errors": len(errors),
                "retries": stats.retries + final.retries,
                "expected": plan.expected_overall(),
                "server": sum(c.server.api_calls for c in checks),
                "exact": not problems,
                "said": stats.counted + final.counted,
                "cpu_us": {g: v / max(1, stats.readings) * 1e6 for g, v in cpu.items()},
            }
            r = results[phase]
            print(
                f"  {r['readings']:,} readings in {r['seconds']:.2f} s = {r['rps']:,.0f} readings/s; "
                f"p50 {r['p50']:.1f} ms p95 {r['p95']:.1f} ms p99 {r['p99']:.1f} ms; "
                f"{r['errors']} errors, {r['retries']} retries; totals "
                f"{'exact' if r['exact'] else 'WRONG'} ({r['server']:,} of {r['expected']:,} expected)",
                flush=True,
            )
            print(
                "  CPU per reading: "
                + ", ".join(f"{g} {v:,.0f} us" for g, v in r["cpu_us"].items())
                + f"; wall per reading on {os.cpu_count()} cores: "
                f"{r['seconds'] / max(1, r['readings']) * 1e6 * (os.cpu_count() or 1):,.0f} us"
                f" (load average now {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        transport.close()

    if not args.skip_raw:
        print("raw bound: recording the app's SQL in-process on a copy ...", flush=True)
        spec_file, rec_file = work / "specs.json", work / "recorded.pickle"
        spec_file.write_text(json.dumps(phases))
        samples = {"single": args.record_single, "batch": args.record_batch}
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.ingest_bench",
                "_record",
                str(spec_file),
                str(keys_file),
                str(rec_file),
                json.dumps(samples),
            ],
            cwd=ROOT,
            env=app_env(db_url(args.database_url, rec_db)),
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"recording failed:\n{out.stdout}\n{out.stderr}")
        recorded = pickle.loads(rec_file.read_bytes())
        for phase in plans:
            statements = sum(len(s) for lane in recorded[phase] for _, s in lane)
            requests = sum(len(lane) for lane in recorded[phase])
            readings, seconds, pg_cpu = replay(
                db_url(args.database_url, raw_db), recorded[phase], recorded["_session"]
            )
            raw_rps = readings / seconds if seconds else 0.0
            results[phase].update(
                raw_rps=raw_rps, raw_readings=readings, statements=statements / max(1, requests)
            )
            print(
                f"  {phase}: {readings:,} readings ({requests:,} requests, {statements / max(1, requests):.1f} "
                f"statements each) in {seconds:.2f} s = {raw_rps:,.0f} readings/s; "
                f"postgres CPU {pg_cpu / max(1, readings) * 1e6:,.0f} us per reading",
                flush=True,
            )

    print()
    print("RESULTS (readings/s, latency of one request)")
    for phase, r in results.items():
        raw = r.get("raw_rps")
        ratio = (
            f"; HTTP = {r['rps'] / raw:.0%} of the raw database bound ({raw:,.0f} readings/s)"
            if raw
            else ""
        )
        print(
            f"  {phase:6}: {r['rps']:>9,.0f} readings/s  p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  "
            f"p99 {r['p99']:6.1f} ms  errors {r['errors']}{ratio}"
        )
        # What the code costs, whatever else the box runs: CPU per reading of all parts,
        # and the rate the cores could sustain if they did nothing else.
        cpu_total = sum(r["cpu_us"].values())
        print(
            f"          CPU {cpu_total:,.0f} us per reading ("
            + ", ".join(f"{g} {v:,.0f}" for g, v in r["cpu_us"].items())
            + f"): CPU-bound ceiling on {os.cpu_count()} idle cores "
            f"{(os.cpu_count() or 1) * 1e6 / max(cpu_total, 1e-9):,.0f} readings/s"
        )
    exact = all(r["exact"] for r in results.values())
    print(
        f"  totals: {'exact' if exact else 'WRONG'} "
        + ", ".join(f"{p} {r['server']:,}/{r['expected']:,}" for p, r in results.items())
    )
    missed = []
    if results["single"]["rps"] < TARGETS["single_rps"]:
        missed.append(
            f"single {results['single']['rps']:,.0f} < {TARGETS['single_rps']:,.0f} readings/s"
        )
    if results["single"]["p99"] > TARGETS["single_p99_ms"]:
        missed.append(
            f"single p99 {results['single']['p99']:.1f} > {TARGETS['single_p99_ms']:.0f} ms"
        )
    if results["batch"]["rps"] < TARGETS["batch_rps"]:
        missed.append(
            f"batch {results['batch']['rps']:,.0f} < {TARGETS['batch_rps']:,.0f} readings/s"
        )
    print("  targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    for failure in failures[:20]:
        print(f"  FAILURE {failure}")

    if not args.keep:
        drop(args.database_url, main_db, rec_db, raw_db)
    if failures or not exact:
        return 1
    return 2 if missed and args.strict else 0
