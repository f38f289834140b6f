"""Reads on jobs: visibility (a trader sees their own jobs, a risk officer all),
lists, and the figures of the stats and health endpoints."""

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from redis.exceptions import RedisError

from etrms.celery import PRIORITY_QUEUES
from etrms.errors import NotFound
from etrms.roles import visible_to
from jobs.broker import broker_depths
from jobs.models import NOT_STARTED, Job, JobStatus
from jobs.scheduling import RUN_SCHEDULED_TASK, next_run_of
from jobs.services.heartbeats import beat_alive, worker_counters, workers_alive


def jobs_visible_to(user, *, user_id=None) -> QuerySet[Job]:
    queryset = visible_to(Job.objects.all(), user)
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    return queryset


def job_get(*, user, job_id) -> Job:
    job = jobs_visible_to(user).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such job.")
    return job


def jobs_pending(*, user, priority: str | None = None, user_id=None) -> QuerySet[Job]:
    """Jobs not started yet (pending, scheduled, retrying), newest first."""
    queryset = jobs_visible_to(user, user_id=user_id).filter(status__in=NOT_STARTED)
    if priority:
        queryset = queryset.filter(priority=priority)
    return queryset.order_by("-created_at")


def jobs_dead_lettered(*, user, user_id=None) -> QuerySet[Job]:
    return jobs_visible_to(user, user_id=user_id).filter(dead_lettered=True).order_by("-completed_at", "-created_at")


def queue_stats(*, with_broker: bool = True) -> dict:
    """Counts from the database (by status and priority) and depths from the broker."""
    rows = (
        Job.objects.filter(Q(status__in=(*NOT_STARTED, JobStatus.PROCESSING)) | Q(dead_lettered=True))
        .values("status", "priority", "dead_lettered")
        .annotate(n=Count("id"))
    )
    pending = dict.fromkeys(PRIORITY_QUEUES, 0)
    totals = {"scheduled": 0, "retrying": 0, "processing": 0, "dead_letter": 0}
    for row in rows:
        if row["dead_lettered"]:
            totals["dead_letter"] += row["n"]
        elif row["status"] == JobStatus.PENDING:
            pending[row["priority"]] += row["n"]
        else:
            totals[row["status"]] += row["n"]
    return {
        "total_pending": sum(pending.values()),
        "pending": pending,
        "scheduled": totals["scheduled"],
        "retrying": totals["retrying"],
        "processing": totals["processing"],
        "dead_letter": totals["dead_letter"],
        **({"broker": broker_depths()} if with_broker else {}),
    }


def _rate(succeeded: int, processed: int) -> float:
    return round(100.0 * succeeded / processed, 2) if processed else 0.0


def worker_stats() -> dict:
    """Per-worker counters (Redis) aggregated as Phase 4 shows, plus `per_worker`."""
    alive = workers_alive()
    counters = worker_counters()
    busy = dict(
        Job.objects.filter(status=JobStatus.PROCESSING).values_list("worker").annotate(n=Count("id")).order_by()
    )
    per_worker = []
    for hostname in sorted(set(counters) | alive):
        counts = counters.get(hostname, {"processed": 0, "succeeded": 0, "failed": 0, "total_seconds": 0.0})
        processing = busy.get(hostname, 0)
        per_worker.append(
            {
                "worker_id": hostname,
                "status": ("processing" if processing else "idle") if hostname in alive else "offline",
                "alive": hostname in alive,
                "processing": processing,
                "jobs_processed": counts["processed"],
                "jobs_succeeded": counts["succeeded"],
                "jobs_failed": counts["failed"],
                "success_rate": _rate(counts["succeeded"], counts["processed"]),
                "average_processing_time": round(counts["total_seconds"] / counts["processed"], 4)
                if counts["processed"]
                else 0.0,
            }
        )
    live = [w for w in per_worker if w["alive"]]
    processed = sum(w["jobs_processed"] for w in per_worker)
    succeeded = sum(w["jobs_succeeded"] for w in per_worker)
    total_seconds = sum(counters.get(w["worker_id"], {}).get("total_seconds", 0.0) for w in per_worker)
    status = "offline" if not live else "processing" if any(w["processing"] for w in live) else "idle"
    return {
        "worker_id": live[0]["worker_id"] if len(live) == 1 else ("all" if live else None),
        "status": status,
        "workers_alive": len(live),
        "jobs_processed": processed,
        "jobs_succeeded": succeeded,
        "jobs_failed": sum(w["jobs_failed"] for w in per_worker),
        "success_rate": _rate(succeeded, processed),
        "average_processing_time": round(total_seconds / processed, 4) if processed else 0.0,
        "per_worker": per_worker,
    }


def scheduled_tasks() -> QuerySet[PeriodicTask]:
    return (
        PeriodicTask.objects.filter(task=RUN_SCHEDULED_TASK)
        .select_related("interval", "crontab", "clocked")
        .order_by("name")
    )


def scheduler_stats() -> dict:
    now = timezone.now()
    tasks = list(scheduled_tasks())
    enabled = [task for task in tasks if task.enabled]
    due = [task for task in enabled if (next_run := next_run_of(task, now=now)) is not None and next_run <= now]
    return {
        "total_tasks": len(tasks),
        "enabled_tasks": len(enabled),
        "disabled_tasks": len(tasks) - len(enabled),
        "due_tasks": len(due),
    }


def job_stats() -> dict:
    workers = worker_stats()
    return {
        "running": workers["workers_alive"] > 0,
        "timestamp": timezone.now(),
        "queue": queue_stats(),
        "scheduler": scheduler_stats(),
        "workers": workers,
    }


def job_health() -> dict:
    """Liveness from heartbeats in Redis (no broadcast to the workers). With Redis down
    nothing can run: workers and scheduler report not running."""
    try:
        alive, scheduler_running = workers_alive(), beat_alive()
        queue = queue_stats()
    except RedisError:
        alive, scheduler_running = set(), False
        queue = queue_stats(with_broker=False)
    return {
        "running": bool(alive) and scheduler_running,
        "timestamp": timezone.now(),
        "scheduler": {"enabled": scheduled_tasks().filter(enabled=True).exists(), "running": scheduler_running},
        "workers": {"mode": "single" if len(alive) <= 1 else "multi", "running": bool(alive), "count": len(alive)},
        "queue": {
            "pending": queue["pending"],
            "scheduled": queue["scheduled"],
            "processing": queue["processing"],
            "dead_letter": queue["dead_letter"],
        },
    }
