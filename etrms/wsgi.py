"""WSGI entry point (gunicorn, deploy/gunicorn.conf.py): REST, admin, docs and pages.

The production shape (SPEC §2, Zulip's pattern): every view is synchronous, so HTTP is
served by WSGI worker processes, one request at a time each, and WebSockets by daphne
(etrms/asgi.py) beside them; nginx (deploy/nginx/) routes the two behind one port.

A sync worker handles one request at a time on one thread, so its database connection
is kept between requests (`CONN_MAX_AGE`, checked before reuse by `CONN_HEALTH_CHECKS`:
a connection PostgreSQL dropped is replaced instead of failing the request).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etrms.settings")
# Kept connections, SQLite's included: one thread per worker reuses them.
os.environ.setdefault("CONN_MAX_AGE", "600")
application = get_wsgi_application()
