"""Beat's scheduler: django-celery-beat's database scheduler plus a heartbeat in Redis,
so `/jobs/health` knows beat is alive without asking it.

Beat outlives a Redis or database outage (STYLE §10): a tick that cannot reach one logs
the outage once, skips what it could not do (the runs due meanwhile are not sent; the
next ones are), and the next ticks retry until it answers. Celery's own loop would let
the exception end the process. Started while the database is down, it waits for the
database before it reads the schedule (Celery would exit).
"""

import logging
import time

from celery.beat import SchedulingError
from django.db import close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from etrms.outage import DATABASE_ERRORS, OUTAGE_ERRORS, OutageLog
from jobs.services.heartbeats import beat_heartbeat

logger = logging.getLogger("jobs.beat")
# While a dependency is down, how soon the next tick tries again.
OUTAGE_RETRY_SECONDS = 1.0


class Scheduler(DatabaseScheduler):
    def __init__(self, *args, **kwargs):
        self.outage = OutageLog(logger, "beat")
        super().__init__(*args, **kwargs)

    def setup_schedule(self):
        """Read the schedule from the database, once it answers."""
        while True:
            try:
                super().setup_schedule()
            except DATABASE_ERRORS as exc:
                self._outage(exc)
                self._initial_read = True  # the failed read marked the schedule read
                time.sleep(OUTAGE_RETRY_SECONDS)
            else:
                return

    def tick(self, *args, **kwargs):
        try:
            interval = super().tick(*args, **kwargs)
            beat_heartbeat(ttl_seconds=max(30.0, 3 * (self.max_interval or 5)))
        except OUTAGE_ERRORS as exc:
            self._outage(exc)
            return OUTAGE_RETRY_SECONDS
        self.outage.ok()
        return interval

    def apply_entry(self, entry, producer=None):
        """Celery's, but a broker outage is one line for the whole outage, not a traceback
        per due task."""
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except SchedulingError as exc:  # Celery wraps what publishing raised
            if isinstance(exc.__context__, OUTAGE_ERRORS):
                self._outage(exc.__context__)
            else:  # a bad entry must not stop the others (as in Celery's)
                logger.exception("Scheduler: could not send %s", entry.name)

    def sync(self):
        try:
            super().sync()
        except OUTAGE_ERRORS as exc:
            self._outage(exc)

    def _outage(self, exc: BaseException) -> None:
        self.outage.failed(exc)
        if isinstance(exc, DATABASE_ERRORS):
            close_old_connections()
