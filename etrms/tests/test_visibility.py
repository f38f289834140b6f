"""Who sees what (SPEC §3): one rule, `etrms.roles.visible_to`, behind every selector."""

import pytest

from etrms.roles import visible_to
from jobs.models import Job
from risk.models import RiskAlert
from risk.tests.factories import RiskAlertFactory

pytestmark = pytest.mark.django_db


def test_a_trader_sees_their_own_rows_and_an_officer_everyones(trader, officer, make_user):
    other = make_user("other")
    mine, theirs = Job.objects.create(name="ping", user=trader), Job.objects.create(name="ping", user=other)
    assert set(visible_to(Job.objects.all(), trader)) == {mine}
    assert set(visible_to(Job.objects.all(), officer)) == {mine, theirs}


def test_the_owner_field_can_be_named(trader, make_user):
    other = make_user("other")
    mine = RiskAlertFactory(user=trader)
    RiskAlertFactory(user=other)
    assert list(visible_to(RiskAlert.objects.all(), trader, owner="user")) == [mine]
