"""Page views of the customer web UI, one module per area."""
