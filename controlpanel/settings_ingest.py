"""Settings of the ingest-only service: the real settings, served with the native usage
API's routes only and the middleware those answers need.

`docker-compose.yml` runs it as its own gunicorn service (`ingest`), and the proxy in
front sends `/api/v1/usage` and `/api/v1/usage/batch` there; everything else goes to
`web`. The answers are the same as `web`'s (the same views, the same response
middleware); what the service leaves out is what those views never use: sessions, CSRF,
authentication of people, messages, static files. See docs/decisions/0003.
"""

from controlpanel.settings import *  # noqa: F403
from controlpanel.settings import DATABASES, REQUEST_LOG_MIDDLEWARE

ROOT_URLCONF = "controlpanel.urls_ingest"
# The response headers web's stack adds to these answers (security headers, HSTS on
# HTTPS, the SSL redirect, ALLOWED_HOSTS through CommonMiddleware, X-Frame-Options).
# And the JSON form of 404/405 every machine path answers (controlpanel.edges).
MIDDLEWARE = [
    *REQUEST_LOG_MIDDLEWARE,
    "controlpanel.edges.ApiErrorsMiddleware",
    # A database outage raised by a view answers 503 + Retry-After (controlpanel.outages).
    "controlpanel.outages.OutageMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # allauth refuses to start without it (its app checks MIDDLEWARE at startup); it costs
    # a request context per request and changes nothing in these answers.
    "allauth.account.middleware.AccountMiddleware",
]
# No health check (a `SELECT 1` round trip) before each request's first query: what this
# service writes goes through metering.ingest.record, which replaces a connection the
# server dropped and retries (replaying cumulative readings counts nothing twice); any
# other storage error answers 503 with Retry-After. On web, every view relies on the check.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
# What `manage.py check` says of the middleware left out, answered: this URLconf serves
# no admin page (admin.E408-E410: its app stays installed for the shared models) and no
# form or cookie (security.W003: API keys, never cookies, authenticate these requests).
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410", "security.W003"]
