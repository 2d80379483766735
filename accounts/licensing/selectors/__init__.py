"""Reads for licensing, one module per concern.

- `standing`: whether an environment may hold a license now (contract, environment, seat)
- `caller`: the license endpoint's hot path (key and standing checks in one query)
- `published`: the JWKS and the lists of signing keys and issued licenses
- `validation`: online validation of a token
"""
