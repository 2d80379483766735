"""Every read of the accounts domain, one module per area.

- `api_keys`: the environment API key check
- `organizations`: contracts in force, memberships, projects, environments
- `team`: members, invitations, seats, personal environments, access tokens

Licensing reads are in `accounts.licensing.selectors`.
"""
