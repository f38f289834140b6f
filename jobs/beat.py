"""Beat's scheduler: django-celery-beat's database scheduler plus a heartbeat in Redis,
so `/jobs/health` knows beat is alive without asking it."""

from django_celery_beat.schedulers import DatabaseScheduler

from jobs.services.heartbeats import beat_heartbeat


class Scheduler(DatabaseScheduler):
    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        beat_heartbeat(ttl_seconds=max(30.0, 3 * (self.max_interval or 5)))
        return interval
