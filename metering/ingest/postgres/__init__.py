"""Ingest's SQL: the one write statement that holds the counting rules, the read of the
series heads that rule 3 needs, and how hot statements are run (prepared once per
connection, generic plans, binary parameters and results).

- `cursor`: `Statement` and the prepared cursor;
- `rules`: the SQL of the rules shared by every writer of usage (the attribution hour,
  the rollup, day and gauge merges);
- `write`: the statements of a request (a single reading is a batch of one).
"""
