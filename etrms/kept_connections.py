"""Database connections kept between units of work, in processes whose threads are few
and live as long as the process: a Celery pool process (one task at a time), the feed's
database thread (one batch at a time). Django's request cycle does the same for a
gunicorn worker (etrms/wsgi.py raises `CONN_MAX_AGE` there).

SQLite's default keeps none, since under daphne every request's thread would keep a file
handle of its own; reconnecting cost 3 ms of a 5 ms no-op job, and the feed's database
thread reconnected for every batch and every chunk of marks (a tenth of its time,
bench/feed.py). The connection is still dropped past its age or when broken (a
database restart): callers run `close_old_connections()` before each unit, and
`CONN_HEALTH_CHECKS` checks a kept one before it is used.
"""

import os

from django.db import connections

KEPT_CONNECTION_SECONDS = 600


def connections_keep() -> None:
    """Keep this process's database connections for `KEPT_CONNECTION_SECONDS`, unless the
    environment sets `CONN_MAX_AGE`. Call it before the threads that use the database
    start (they share the settings it changes)."""
    settings_dict = connections["default"].settings_dict
    if "CONN_MAX_AGE" not in os.environ and "pool" not in settings_dict.get("OPTIONS", {}):
        settings_dict["CONN_MAX_AGE"] = KEPT_CONNECTION_SECONDS  # (a pool keeps them its own way)
