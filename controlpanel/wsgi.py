import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
django_application = get_wsgi_application()

from metering.ingest.wsgi import IngestLane  # noqa: E402  (needs the settings above)

# POST /api/v1/usage[/batch] skip Django's request handling (see metering.ingest.wsgi).
application = IngestLane(django_application)
