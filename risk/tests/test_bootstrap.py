"""Bootstrap: the global configuration row and the default breakers, idempotently."""

import io

import pytest

from risk.bootstrap import DEFAULT_BREAKERS, bootstrap
from risk.constants import ConditionType
from risk.models import CircuitBreaker, GlobalConfig

pytestmark = pytest.mark.django_db


def test_bootstrap_creates_defaults_once_and_keeps_officers_changes():
    bootstrap(stdout=io.StringIO())
    assert GlobalConfig.objects.get().dry_run is True
    names = set(CircuitBreaker.objects.values_list("name", flat=True))
    assert names == {definition["name"] for definition in DEFAULT_BREAKERS}
    # every condition type has a default
    assert set(CircuitBreaker.objects.values_list("condition_type", flat=True)) == set(ConditionType.values)

    CircuitBreaker.objects.filter(name="stop-loss-5000").update(threshold=1234, enabled=False)
    CircuitBreaker.objects.filter(name="max-hold-7d").delete()
    out = io.StringIO()
    bootstrap(stdout=out)
    assert "max-hold-7d" in out.getvalue()
    stop = CircuitBreaker.objects.get(name="stop-loss-5000")
    assert stop.threshold == 1234 and stop.enabled is False
    assert CircuitBreaker.objects.count() == len(DEFAULT_BREAKERS)


def test_bootstrap_schedules_the_periodic_sweep():
    import json

    from django_celery_beat.models import PeriodicTask

    from risk.bootstrap import SWEEP_INTERVAL_SECONDS, SWEEP_TASK_NAME

    bootstrap(stdout=io.StringIO())
    bootstrap(stdout=io.StringIO())
    task = PeriodicTask.objects.get(name=SWEEP_TASK_NAME)
    assert task.enabled and task.interval.every == SWEEP_INTERVAL_SECONDS
    assert json.loads(task.kwargs)["job_name"] == "evaluate_risk"
    assert json.loads(task.kwargs)["priority"] == "high"
