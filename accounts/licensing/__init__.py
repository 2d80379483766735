"""Signed licenses: Ed25519 signing keys, the WCP license document, issuance, validation.

Layout: `keys` (key material, JWK, thumbprints, JWS), `documents` (the CMS's license
document from a contract), `services` (writes: issue, revoke, rotate), `selectors`
(reads: standing checks, the license caller, JWKS, validation), `views`. The models
(SigningKey, License) are in `accounts.models.licensing`.
"""
