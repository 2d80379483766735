import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
django_application = get_wsgi_application()

from controlpanel.bodies import RequestBodies  # noqa: E402  (DRF needs the apps loaded)

# Chunked request bodies read, truncated ones refused, for every endpoint.
application = RequestBodies(django_application)
