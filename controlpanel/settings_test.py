"""Settings for the test suite: the real settings, with test-only defaults.

Anything set in the environment (DATABASE_URL and REDIS_URL in CI) still wins.
"""

import os
import tempfile
from pathlib import Path

# Without DATABASE_URL the tests run on the embedded server of the real DATA_DIR (./var by
# default), the one `make run` uses, in a test database of their own; everything else a
# test run writes goes to a fresh temporary DATA_DIR.
_data_dir = os.environ.get("DATA_DIR", str(Path(__file__).resolve().parent.parent / "var"))
os.environ.setdefault("EMBEDDED_POSTGRES_DIR", os.path.join(_data_dir, "postgres"))
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault(
    "FIELD_ENCRYPTION_KEY", "jk8XJNXgddmVqgyPSMszxRZh-Lhq7BOm8Sz0HOz3rIE="
)  # test only
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="controlpanel-test-"))
os.environ.setdefault("STATIC_ROOT", os.path.join(os.environ["DATA_DIR"], "static"))
os.makedirs(os.environ["STATIC_ROOT"], exist_ok=True)

from controlpanel.settings import *  # noqa: F403
from controlpanel.settings import CACHES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# Several test runs may share one Redis: keep their cache keys apart.
CACHES["default"]["KEY_PREFIX"] = f"cptest-{os.getpid()}"
