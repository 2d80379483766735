"""Usage-ingest benchmark: the app under gunicorn on PostgreSQL, 8 concurrent clients.

    bench/ingest [--single-readings N] [--batch-readings N] [--settings MODULE] ...

Creates its own databases (`<name>_bench`, `_bench_rec`, `_bench_raw` next to
DATABASE_URL's database), migrates, provisions environments, starts gunicorn, pushes a
simulated fleet (tools.fleet: restarts, duplicates, late readings, heartbeats, gauges)
as single readings then as batches, checks the server's totals are exact, and measures
the raw database bound: the same SQL statements the app ran (recorded in-process on a
copy of the database) replayed through psycopg by as many connections. See
bench/README.md. Exit status: 0 when totals are exact and nothing failed, 1 otherwise
(and 2 with --strict when a target is missed).

Modules: `config` (arguments, environment, databases), `fleet` (the two phases),
`server` (gunicorn and CPU accounting), `raw` (recording and replaying the app's SQL),
`run` (the measured run and its report). `python -m bench.ingest_bench` runs it.
"""
