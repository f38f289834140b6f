"""Four eyes for loosening (issue 15 item 6, SPEC §12): with `four_eyes` on, an
officer's loosening of an officer-set limit answers 202 and waits for a *different*
officer's approval (API or admin); tightening is immediate; the requester may
withdraw; with `four_eyes` off (the default) a one-person desk changes it at once."""

import pytest

from risk.models import LimitChange, RiskLimit
from risk.services.config import global_config_update

pytestmark = [pytest.mark.django_db]

LIMITS = "/api/v1/risk/limits"
CHANGES = "/api/v1/risk/limit-changes"


@pytest.fixture
def four_eyes():
    global_config_update(actor=None, four_eyes=True)


@pytest.fixture
def second_officer_client(make_user, api_client_for):
    return api_client_for(make_user(officer=True))


@pytest.fixture
def officer_set_limit(officer_client, trader):
    """An exposure limit of 10,000 (warning 8,000) an officer set for the trader."""
    body = {"user_id": str(trader.pk), "limit_type": "total_exposure", "threshold_value": "10000",
            "warning_value": "8000"}  # fmt: skip
    response = officer_client.post(LIMITS, body, format="json")
    assert response.status_code == 201
    return RiskLimit.objects.get(pk=response.json()["id"])


def patch(client, limit, **body):
    return client.patch(f"{LIMITS}/{limit.pk}", body, format="json")


def threshold(limit) -> str:
    limit.refresh_from_db()
    return f"{limit.threshold_value:.2f}"


def test_without_four_eyes_an_officer_loosens_at_once(officer_client, officer_set_limit):
    assert officer_client.get("/api/v1/config/global").json()["data"]["four_eyes"] is False
    assert patch(officer_client, officer_set_limit, threshold_value="20000").status_code == 200
    assert threshold(officer_set_limit) == "20000.00" and not LimitChange.objects.exists()


def test_raising_the_threshold_waits_for_a_different_officer(
    four_eyes, officer_client, second_officer_client, officer_set_limit
):
    response = patch(officer_client, officer_set_limit, threshold_value="10000.01")  # just above: a loosening
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending_approval" and body["loosens"] == ["threshold_value"]
    assert threshold(officer_set_limit) == "10000.00"  # nothing applied yet

    (listed,) = officer_client.get(CHANGES).json()["changes"]
    assert listed["change_id"] == body["change_id"] and listed["changes"] == {"threshold_value": "10000.01"}
    assert listed["previous"] == {"threshold_value": "10000.00"} and listed["loosens"] == ["threshold_value"]

    approve = f"{CHANGES}/{body['change_id']}/approve"
    refused = officer_client.post(approve)
    assert refused.status_code == 403 and "different risk officer" in refused.json()["message"]
    assert threshold(officer_set_limit) == "10000.00"

    approved = second_officer_client.post(approve)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert threshold(officer_set_limit) == "10000.01"
    assert officer_client.get(CHANGES).json() == {"changes": [], "count": 0}
    assert second_officer_client.post(approve).status_code == 409  # decided already


def test_tightening_and_an_unchanged_threshold_apply_at_once(four_eyes, officer_client, officer_set_limit):
    assert patch(officer_client, officer_set_limit, threshold_value="10000").status_code == 200  # at: not looser
    assert patch(officer_client, officer_set_limit, threshold_value="9999.99").status_code == 200  # just below
    assert patch(officer_client, officer_set_limit, warning_value="7000").status_code == 200
    assert threshold(officer_set_limit) == "9999.99" and not LimitChange.objects.exists()


def test_disabling_and_deleting_wait_and_a_second_request_is_a_conflict(
    four_eyes, officer_client, second_officer_client, officer_set_limit
):
    disable = patch(officer_client, officer_set_limit, enabled=False)
    assert disable.status_code == 202 and disable.json()["loosens"] == ["enabled"]
    assert patch(officer_client, officer_set_limit, threshold_value="20000").status_code == 409  # one pending
    officer_client.post(f"{CHANGES}/{disable.json()['change_id']}/withdraw")

    delete = officer_client.delete(f"{LIMITS}/{officer_set_limit.pk}")
    assert delete.status_code == 202 and delete.json()["loosens"] == ["deleted"]
    assert RiskLimit.objects.filter(pk=officer_set_limit.pk).exists()
    assert second_officer_client.post(f"{CHANGES}/{delete.json()['change_id']}/approve").status_code == 200
    assert not RiskLimit.objects.filter(pk=officer_set_limit.pk).exists()
    assert LimitChange.objects.get(pk=delete.json()["change_id"]).status == "approved"


def test_only_the_requester_withdraws_and_nothing_is_applied(
    four_eyes, officer_client, second_officer_client, officer_set_limit
):
    change_id = patch(officer_client, officer_set_limit, threshold_value="50000").json()["change_id"]
    assert second_officer_client.post(f"{CHANGES}/{change_id}/withdraw").status_code == 403
    withdrawn = officer_client.post(f"{CHANGES}/{change_id}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    assert second_officer_client.post(f"{CHANGES}/{change_id}/approve").status_code == 409
    assert threshold(officer_set_limit) == "10000.00"
    assert officer_client.get(CHANGES, {"status": "withdrawn"}).json()["count"] == 1
    assert officer_client.get(CHANGES, {"status": "bogus"}).status_code == 400


def test_a_limit_the_trader_set_is_loosened_at_once_and_traders_cannot_approve(
    four_eyes, officer_client, trader_client, trader, officer_set_limit
):
    own = trader_client.post(LIMITS, {"limit_type": "leverage", "threshold_value": "3"}, format="json").json()
    assert officer_client.patch(f"{LIMITS}/{own['id']}", {"threshold_value": "5"}, format="json").status_code == 200
    change_id = patch(officer_client, officer_set_limit, threshold_value="50000").json()["change_id"]
    assert trader_client.get(CHANGES).json()["count"] == 1  # a trader sees changes pending on their limits
    assert trader_client.post(f"{CHANGES}/{change_id}/approve").status_code == 403
    assert patch(trader_client, officer_set_limit, threshold_value="60000").status_code == 403  # as before


def test_the_admin_approves_with_a_different_officer_only(
    four_eyes, client, officer, make_user, officer_client, officer_set_limit
):
    change_id = patch(officer_client, officer_set_limit, threshold_value="12000").json()["change_id"]
    url = "/admin/risk/limitchange/"
    client.force_login(officer)
    client.post(url, {"action": "approve", "_selected_action": [change_id]})
    assert LimitChange.objects.get(pk=change_id).status == "pending"
    client.force_login(make_user(officer=True))
    client.post(url, {"action": "approve", "_selected_action": [change_id]})
    assert LimitChange.objects.get(pk=change_id).status == "approved" and threshold(officer_set_limit) == "12000.00"


def test_the_admin_holds_back_a_loosening_edit(four_eyes, client, officer, officer_set_limit):
    client.force_login(officer)
    form = {"user": str(officer_set_limit.user_id), "symbol": "", "limit_type": "total_exposure",
            "threshold_value": "15000", "warning_value": "8000", "enabled": "on"}  # fmt: skip
    client.post(f"/admin/risk/risklimit/{officer_set_limit.pk}/change/", form)
    assert threshold(officer_set_limit) == "10000.00"
    assert LimitChange.objects.get().changes == {"threshold_value": "15000.00"}
