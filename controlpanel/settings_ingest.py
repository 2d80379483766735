"""Settings of the ingest-only service: the real settings, served with the native usage
API's routes only and the middleware those answers need.

`docker-compose.yml` runs it as its own gunicorn service (`ingest`), and the proxy in
front sends `/api/v1/usage` and `/api/v1/usage/batch` there; everything else goes to
`web`. The answers are the same as `web`'s (the same views, the same response
middleware); what the service leaves out is what those views never use: sessions, CSRF,
authentication of people, messages, static files. See docs/decisions/0003.
"""

from controlpanel.settings import *  # noqa: F403

ROOT_URLCONF = "controlpanel.urls_ingest"
# The response headers web's stack adds to these answers (security headers, HSTS on
# HTTPS, the SSL redirect, ALLOWED_HOSTS through CommonMiddleware, X-Frame-Options).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
