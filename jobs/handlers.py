"""The job service's own handlers: the diagnostics ops use to probe the pipeline
(`ping`, `sleep`, `fail`) and the housekeeping `cleanup`."""

import os
import socket
import time
from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from jobs.registry import job_handler
from jobs.services.cleanup import cleanup_run


@job_handler(name="ping", description="Answer at once: proves a worker takes jobs.", default_priority="normal")
def ping(job) -> dict:
    return {"pong": True, "worker": socket.gethostname(), "pid": os.getpid(), "at": timezone.now().isoformat()}


class SleepArgs(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0, max_value=60, help_text="How long to hold the worker (at most 60).")


@job_handler(
    name="sleep",
    description="Hold a worker for `seconds` (at most 60): probes timeouts and priority.",
    args=SleepArgs,
    default_priority="low",
    officer_only=True,
)
def sleep(job, *, seconds: float) -> dict:
    time.sleep(seconds)
    return {"slept": seconds}


class FailArgs(serializers.Serializer):
    error = serializers.CharField(max_length=500, help_text="The error message to fail with.")
    times = serializers.IntegerField(
        min_value=1, required=False, help_text="Fail only the first `times` runs (default: every run)."
    )


@job_handler(
    name="fail",
    description="Fail with `error` (the first `times` runs, or always): probes retries and the dead-letter queue.",
    args=FailArgs,
    default_priority="low",
    officer_only=True,
)
def fail(job, *, error: str, times: int | None = None) -> dict:
    run = job.retry_count + 1
    if times is None or run <= times:
        raise RuntimeError(error)
    return {"succeeded_on_run": run}


class CleanupArgs(serializers.Serializer):
    older_than_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, default=30, help_text="Age of what is removed (default 30)."
    )


@job_handler(
    name="cleanup",
    description="Delete finished jobs and resolved alerts older than `older_than_days` (default 30).",
    args=CleanupArgs,
    default_priority="low",
    officer_only=True,
)
def cleanup(job, *, older_than_days: int = 30) -> dict:
    return cleanup_run(older_than=timezone.now() - timedelta(days=older_than_days))
