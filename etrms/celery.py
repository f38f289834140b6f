"""The Celery app: four strict-priority queues on Redis, JSON only, late acks.

A worker consumes `-Q critical,high,normal,low`; with the `priority` queue-order
strategy kombu polls them in that order every time (BRPOP returns from the first
non-empty list), and prefetch 1 keeps a worker from hoarding low-priority tasks.
"""

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etrms.settings")

PRIORITY_QUEUES = ("critical", "high", "normal", "low")

app = Celery("etrms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in PRIORITY_QUEUES],
    task_default_queue="normal",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    task_ignore_result=True,
    result_expires=3600,
    timezone="UTC",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    # Workers and beat outlive any broker outage: they retry until it answers (Celery
    # would give up, and exit, after 100 attempts) and keep running tasks meanwhile.
    broker_connection_max_retries=None,
    worker_cancel_long_running_tasks_on_connection_loss=False,
    broker_transport_options={"queue_order_strategy": "priority"},
    beat_scheduler="jobs.beat:Scheduler",
    # Beat saves a task's run count and last run after every send (one row write), not
    # every 3 minutes: /jobs/scheduled tells the truth as soon as a run is sent.
    beat_sync_every=1,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    # Celery's Django fixup closes every database connection before and after each task
    # unless this is set: a pool process then reconnected for every job (PostgreSQL's
    # connect, SQLite's PRAGMAs and functions). It keeps its connection instead, checked
    # at each task's start like a web request's (jobs.worker), recycled every N tasks.
    CELERY_DB_REUSE_MAX=1000,
)
app.autodiscover_tasks()


@app.task(name="etrms.noop", ignore_result=False)
def noop(value=None):
    """A bare task: the broker round-trip probe and the jobs benchmark's baseline."""
    return value
