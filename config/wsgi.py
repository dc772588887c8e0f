"""The WSGI entry point (`gunicorn config.wsgi`).

The application is loaded whole here, URL configuration and views included, and everything
loaded is then frozen out of the garbage collector's sight (`gc.freeze`): these ~200,000
objects live as long as the process, and every full collection would otherwise walk them all,
about 100 ms here, which a request that makes many objects (a lineage graph of 10,000 nodes)
set off in two requests out of five.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
get_resolver().url_patterns  # noqa: B018 - imports the URL configuration and every view
gc.collect()
gc.freeze()
