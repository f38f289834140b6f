"""Worker process wiring: start the supervisor when a worker is ready, stop it on
shutdown; kept database connections in the pool processes; the worker's and beat's
metrics ports (etrms.metrics); one log line per database outage, not one traceback per
requeued job message."""

import logging

from celery.exceptions import Reject
from celery.signals import (
    beat_init,
    task_prerun,
    worker_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from django.db import close_old_connections

from etrms import metrics
from etrms.kept_connections import connections_keep

_supervisor = None


@worker_ready.connect
def start_supervisor(sender, **kwargs) -> None:
    global _supervisor
    from jobs.services.supervisor import Supervisor

    _supervisor = Supervisor(hostname=sender.hostname)
    _supervisor.start()


@worker_shutdown.connect
def stop_supervisor(sender, **kwargs) -> None:
    if _supervisor is not None:
        _supervisor.stop()


class RequeuedForOutage(logging.Filter):
    """Drops Celery's WARNING, with traceback, for a job message handed back because the
    database is down (jobs.tasks): it would repeat every second of the outage, which
    jobs.execution already logs once when it starts and once when it ends."""

    def filter(self, record: logging.LogRecord) -> bool:
        from jobs.services.execution import DatabaseUnavailable

        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, Reject) and isinstance(exc.reason, DatabaseUnavailable))


@worker_init.connect
def keep_database_connections(sender, **kwargs) -> None:
    """Before the pool starts, so its processes inherit it: a pool process runs one task
    at a time on one thread, as a gunicorn worker serves one request, so it keeps its
    database connection between tasks (Celery's fixup no longer closes it:
    CELERY_DB_REUSE_MAX in etrms.celery)."""
    connections_keep()


@task_prerun.connect
def check_database_connections(**kwargs) -> None:
    """What Django does at a request's start: drop a connection past its age or broken
    (a database restart), and check the kept one before it is used (CONN_HEALTH_CHECKS)."""
    close_old_connections()


@worker_init.connect
def quiet_outage_requeues(sender, **kwargs) -> None:
    """Before the pool starts, so its processes inherit the filter."""
    logging.getLogger("celery.app.trace").addFilter(RequeuedForOutage())


@worker_init.connect
def serve_worker_metrics(sender, **kwargs) -> None:
    """Before the pool starts: its processes count jobs in PROMETHEUS_MULTIPROC_DIR (when
    set), which this main process sums on METRICS_PORT_WORKER."""
    metrics.multiprocess_directory_reset()
    metrics.metrics_server_start("worker")


@worker_process_shutdown.connect
def forget_pool_process(pid=None, **kwargs) -> None:
    if pid:
        metrics.process_dead(pid)


@beat_init.connect
def serve_beat_metrics(sender, **kwargs) -> None:
    metrics.metrics_server_start("beat")
