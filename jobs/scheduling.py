"""Scheduled tasks: django-celery-beat rows that enqueue a Job when beat fires them.

Every scheduled task is a `PeriodicTask` whose Celery task is `jobs.run_scheduled`
and whose kwargs name the job (`job_name`, `args`, `priority`, `max_retries`,
`timeout`). Beat runs them as Jobs, so they show in stats, retry and dead-letter like
any other job. Schedule types: `interval` (`interval_seconds`), `crontab` (`cron`, five
fields, UTC unless `timezone` is given) and `one_off` (`run_at`).
"""

import json
from datetime import datetime, timedelta

from celery.schedules import crontab as celery_crontab
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask

from etrms.errors import Conflict, InvalidInput, NotFound

RUN_SCHEDULED_TASK = "jobs.run_scheduled"
SCHEDULE_TYPES = ("interval", "crontab", "one_off")
# The cron expressions the document promises (`*`, `*/step`, a value, or a list of them in
# each of minute, hour, day of month, month, day of week); Celery's parser accepts more.
_CRON_VALUES = (r"[0-5]?\d", r"[01]?\d|2[0-3]", r"0?[1-9]|[12]\d|3[01]", r"0?[1-9]|1[0-2]", r"[0-6]")
_CRON_ITEMS = [rf"(?:\*(?:/(?:[1-9]|[1-5]\d))?|{values})" for values in _CRON_VALUES]
CRON_PATTERN = "^" + " ".join(rf"{item}(?:,{item})*" for item in _CRON_ITEMS) + "$"
_PERIOD_SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "microseconds": 0}


class ScheduledTaskNotFound(NotFound, ObjectDoesNotExist):
    """404 in the API; an ObjectDoesNotExist for code that catches Django's."""


def _crontab_schedule(cron: str, tz: str) -> CrontabSchedule:
    fields = cron.split()
    if len(fields) != 5:
        raise InvalidInput({"cron": ["A cron expression has five fields: minute hour day month weekday."]})
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        celery_crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
    except (ValueError, TypeError) as exc:
        raise InvalidInput({"cron": [f"Invalid cron expression: {exc}"]}) from exc
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=tz,
    )
    return schedule


def _apply_schedule(
    task: PeriodicTask,
    *,
    schedule_type: str,
    interval_seconds: int | None,
    cron: str | None,
    run_at: datetime | None,
    tz: str,
) -> None:
    task.interval = task.crontab = task.clocked = None
    task.one_off = False
    if schedule_type == "interval":
        if not interval_seconds or interval_seconds < 1:
            raise InvalidInput({"interval_seconds": ["Required for an interval schedule, at least 1."]})
        task.interval, _ = IntervalSchedule.objects.get_or_create(
            every=interval_seconds, period=IntervalSchedule.SECONDS
        )
    elif schedule_type == "crontab":
        if not cron:
            raise InvalidInput({"cron": ["Required for a crontab schedule."]})
        task.crontab = _crontab_schedule(cron, tz)
    elif schedule_type == "one_off":
        if run_at is None:
            raise InvalidInput({"run_at": ["Required for a one_off schedule."]})
        task.clocked, _ = ClockedSchedule.objects.get_or_create(clocked_time=run_at)
        task.one_off = True
    else:
        raise InvalidInput({"schedule_type": [f"Must be one of {', '.join(SCHEDULE_TYPES)}."]})


def _job_spec(*, task_name, job_name, args, priority, max_retries, timeout) -> str:
    from jobs.registry import handler_get

    handler = handler_get(job_name)
    if handler is None:
        raise InvalidInput({"job_name": [f"Unknown job handler {job_name!r}."]})
    return json.dumps(
        {
            "task_name": task_name,
            "job_name": job_name,
            "args": args or {},
            "priority": priority or handler.default_priority,
            "max_retries": max_retries,
            "timeout": timeout,
        }
    )


@transaction.atomic
def scheduled_task_upsert(
    *,
    name: str,
    job_name: str,
    schedule_type: str = "interval",
    interval_seconds: int | None = None,
    cron: str | None = None,
    run_at: datetime | None = None,
    args: dict | None = None,
    priority: str | None = None,
    enabled: bool = True,
    max_retries: int | None = None,
    timeout: int | None = None,
    tz: str = "UTC",
) -> PeriodicTask:
    """Create the scheduled task `name`, or bring an existing one to this definition."""
    task = PeriodicTask.objects.select_for_update().filter(name=name).first() or PeriodicTask(name=name)
    task.task = RUN_SCHEDULED_TASK
    task.kwargs = _job_spec(
        task_name=name, job_name=job_name, args=args, priority=priority, max_retries=max_retries, timeout=timeout
    )
    task.queue = json.loads(task.kwargs)["priority"]
    task.enabled = enabled
    _apply_schedule(
        task, schedule_type=schedule_type, interval_seconds=interval_seconds, cron=cron, run_at=run_at, tz=tz
    )
    task.save()
    return task


@transaction.atomic
def scheduled_task_register(*, name: str, **definition) -> PeriodicTask:
    """A new scheduled task; a name already taken is a 409."""
    if PeriodicTask.objects.filter(name=name).exists():
        raise Conflict(f"A scheduled task named {name!r} already exists.")
    return scheduled_task_upsert(name=name, **definition)


def _get(name: str, *, for_update: bool = False) -> PeriodicTask:
    queryset = PeriodicTask.objects.select_for_update() if for_update else PeriodicTask.objects
    task = queryset.filter(name=name, task=RUN_SCHEDULED_TASK).first()
    if task is None:
        raise ScheduledTaskNotFound(f"No scheduled task named {name!r}.")
    return task


@transaction.atomic
def scheduled_task_set_enabled(*, name: str, enabled: bool) -> PeriodicTask:
    task = _get(name, for_update=True)
    task.enabled = enabled
    task.save()
    return task


@transaction.atomic
def scheduled_task_delete(*, name: str) -> None:
    _get(name, for_update=True).delete()


def scheduled_task_spec(task: PeriodicTask) -> dict:
    """The job a scheduled task enqueues: task_name, job_name, args, priority, max_retries, timeout."""
    return json.loads(task.kwargs or "{}")


@transaction.atomic
def scheduled_task_run_now(*, name: str):
    """Enqueue the task's job at once (counted as a run). Returns the Job."""
    from jobs.services import scheduled_job_enqueue

    task = _get(name, for_update=True)
    job = scheduled_job_enqueue(**scheduled_task_spec(task))
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=timezone.now(), total_run_count=task.total_run_count + 1)
    return job


def schedule_type_of(task: PeriodicTask) -> str:
    if task.clocked_id:
        return "one_off"
    if task.crontab_id:
        return "crontab"
    return "interval"


def next_run_of(task: PeriodicTask, *, now: datetime | None = None) -> datetime | None:
    """When beat will next fire `task`; None when disabled or a one-off that has run."""
    now = now or timezone.now()
    if not task.enabled:
        return None
    if task.clocked_id:
        if task.one_off and task.total_run_count:
            return None
        return task.clocked.clocked_time
    if task.interval_id:
        every = timedelta(seconds=task.interval.every * _PERIOD_SECONDS[task.interval.period])
        return max((task.last_run_at or task.start_time or now) + every, now)
    if task.crontab_id:
        schedule = task.crontab.schedule
        remaining = schedule.remaining_estimate(task.last_run_at or now)
        return now + max(remaining, timedelta(0))
    return None
