"""The `cleanup` job: old finished jobs and old resolved alerts go, the rest stays."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.registry import handler_get
from risk.models import RiskAlert

pytestmark = pytest.mark.django_db


def test_cleanup_deletes_what_is_old_and_done(trader):
    long_ago = timezone.now() - timedelta(days=40)
    old_done = Job.objects.create(name="ping", status="completed", completed_at=long_ago)
    old_dead = Job.objects.create(name="ping", status="failed", dead_lettered=True, completed_at=long_ago)
    recent = Job.objects.create(name="ping", status="completed", completed_at=timezone.now())
    waiting = Job.objects.create(name="ping", status="pending")

    def alert(**fields):
        return RiskAlert.objects.create(
            user=trader, alert_type="leverage_warning", severity="medium", message="m", **fields
        )

    old_resolved = alert(status="resolved", resolved_at=long_ago)
    open_alert = alert(status="triggered")
    new_resolved = alert(status="resolved", resolved_at=timezone.now())

    result = handler_get("cleanup").func(SimpleNamespace(user_id=None), older_than_days=30)

    assert result["deleted"] == {"jobs": 1, "resolved_alerts": 1}
    assert not Job.objects.filter(pk=old_done.pk).exists()
    assert set(Job.objects.values_list("pk", flat=True)) == {old_dead.pk, recent.pk, waiting.pk}
    assert not RiskAlert.objects.filter(pk=old_resolved.pk).exists()
    assert set(RiskAlert.objects.values_list("pk", flat=True)) == {open_alert.pk, new_resolved.pk}
