"""Every write of the accounts domain, one module per area. Plain functions with
keyword-only arguments; a request the caller can fix raises `errors.ServiceError`.

- `organizations`: users, organizations, memberships, contracts, projects, environments
- `api_keys`: environment API keys (issue, revoke, rotate, record use)
- `team`: invitations, roles, member removal (and the team lock order)
- `seats`: developer seats
- `personal`: developers' personal environments
- `access`: personal access tokens and the CLI login
- `provisioning`: a whole customer from one JSON spec

Licensing writes are in `accounts.licensing.services`.
"""
