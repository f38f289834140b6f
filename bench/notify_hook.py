"""What notifications add to raising an alert (issue 15 item 5): `alert_raise` in its
own transaction, commit included (the after-commit callbacks run in the raising
thread), against the same raise with no listener registered, in the same run.

    .venv/bin/python -m bench.notify_hook [--alerts 300] [--endpoints 3]

Modes, interleaved in batches of 25 so drift hits each alike:
- baseline: no alert listener (the raise as it was before notifications);
- no endpoint: the notifications listener, the user has no endpoint (one SELECT);
- endpoints: the user has `--endpoints` subscribed endpoints (a Delivery and a
  `notification_deliver` job each, written and published to the broker after commit).
Nothing is delivered (no worker runs); the rows and queued messages it wrote are
removed at the end.
"""

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.environment import django_setup, redis_running  # noqa: E402

BATCH = 25


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300, help="alerts raised per mode")
    parser.add_argument("--endpoints", type=int, default=3, help="subscribed endpoints in the last mode")
    options = parser.parse_args()

    with redis_running() as redis_note:
        django_setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import transaction

        from etrms.celery import app
        from jobs.models import Job
        from notifications.models import Delivery, NotificationEndpoint
        from notifications.services.dispatch import DELIVER_JOB
        from risk import publish
        from risk.models import RiskAlert
        from risk.services.alerts import AlertSpec, alert_raise

        call_command("migrate", interactive=False, verbosity=0)
        users = get_user_model().objects
        quiet = users.create(username=f"bench-notify-{uuid.uuid4().hex[:6]}")
        busy = users.create(username=f"bench-notify-{uuid.uuid4().hex[:6]}")
        for index in range(options.endpoints):
            NotificationEndpoint.objects.create(
                user=busy, name=f"e{index}", kind="email", email=f"e{index}@example.com", min_severity="low"
            )
        listeners = list(publish._alert_listeners)
        modes = {"baseline (no listener)": (quiet, []), "no endpoint": (quiet, listeners)}
        modes[f"{options.endpoints} endpoints"] = (busy, listeners)
        timings: dict[str, list[float]] = {name: [] for name in modes}

        def raise_one(user) -> float:
            spec = AlertSpec(
                key=f"bench:{uuid.uuid4().hex}", alert_type="daily_loss_exceeded", severity="high", message="x"
            )
            began = time.perf_counter()
            with transaction.atomic():
                alert_raise(user_id=user.pk, spec=spec)
            return time.perf_counter() - began

        try:
            for _ in range(max(1, options.alerts // BATCH)):
                for name, (user, active) in modes.items():
                    publish._alert_listeners[:] = active
                    timings[name].extend(raise_one(user) for _ in range(BATCH))
        finally:
            publish._alert_listeners[:] = listeners
            written = Delivery.objects.filter(user__in=[quiet, busy])
            Job.objects.filter(name=DELIVER_JOB, pk__in=written.values("job_id")).delete()
            RiskAlert.objects.filter(user__in=[quiet, busy]).delete()
            quiet.delete()
            busy.delete()
            app.control.purge()

    base = statistics.median(timings["baseline (no listener)"])
    print(f"Redis: {redis_note}; {len(next(iter(timings.values())))} alerts per mode, batches of {BATCH}")
    print(f"{'mode':<24} {'p50 ms':>8} {'p99 ms':>8} {'p50 / baseline':>15}")
    for name, values in timings.items():
        p50, p99 = statistics.median(values) * 1000, _percentile(values, 99) * 1000
        print(f"{name:<24} {p50:8.2f} {p99:8.2f} {statistics.median(values) / base:15.2f}")


if __name__ == "__main__":
    main()
