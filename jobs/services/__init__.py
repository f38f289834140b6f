"""Writes on jobs. `lifecycle`: enqueue, cancel, dead-letter retry and clear;
`execution`: what a worker does with a job; `supervisor`: publishing due jobs and
recovering lost ones; `heartbeats`: worker and beat liveness and per-worker counters."""

from jobs.services.lifecycle import (
    dlq_clear,
    dlq_retry,
    job_cancel,
    job_enqueue,
    job_publish,
    jobs_enqueue,
    scheduled_job_enqueue,
)

__all__ = [
    "dlq_clear",
    "dlq_retry",
    "job_cancel",
    "job_enqueue",
    "job_publish",
    "jobs_enqueue",
    "scheduled_job_enqueue",
]
