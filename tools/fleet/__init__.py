"""A simulated fleet of CMS instances pushing usage over HTTP, with exact expected totals.

`plan` builds the traffic and its expected totals (pure), `transport` sends it,
`run` drives a whole run and checks the server's totals; `demo` feeds the demo data.
"""
