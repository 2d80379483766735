"""Signed licenses: Ed25519 signing keys, the WCP license document, issuance, validation.

Layout: `models` (SigningKey, License), `keys` (key material, JWK, thumbprints, JWS),
`documents` (the CMS's license document from a contract), `services` (writes: issue,
revoke, rotate), `selectors` (reads: status checks, JWKS, validation), `views`.
"""
