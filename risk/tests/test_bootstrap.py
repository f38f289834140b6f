"""Bootstrap: the global configuration row and the default breakers, idempotently."""

import io

import pytest

from risk.bootstrap import DEFAULT_BREAKERS, bootstrap
from risk.models import CircuitBreaker, ConditionType, GlobalConfig

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
