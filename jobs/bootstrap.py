"""Bootstrap step of the jobs app: the default scheduled tasks."""

from jobs.scheduling import scheduled_task_upsert
from jobs.selectors import scheduled_tasks


def bootstrap(*, stdout) -> None:
    if not scheduled_tasks().filter(name="daily_cleanup").exists():
        scheduled_task_upsert(
            name="daily_cleanup", job_name="cleanup", schedule_type="crontab", cron="30 3 * * *", priority="low"
        )
    stdout.write("Scheduled tasks: daily_cleanup (03:30 UTC).")
