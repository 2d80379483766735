"""Usage series, readings, rollups and flags (see the ingest issue)."""
