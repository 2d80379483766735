"""The ingest hot path: authenticate a key and record readings, in as few round trips as
the database allows.

- `record`: the orchestration (key shape, the one write statement, retries, the key's
  last use after the commit);
- `http`: the request's key and body, and every answer of the usage endpoints;
- `postgres`: the SQL, where counting rules 1, 2, 4 and 5 live (`metering.counting` says
  where each rule is).
"""
