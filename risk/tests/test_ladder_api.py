"""Issue 15 item 4: the graded ladder on a risk limit through the limits API:
validation (SPEC §3's 400 shape), its shape in answers, and who may loosen it."""

import pytest

from risk.tests.factories import RiskLimitFactory
from risk.tests.test_limits_api import URL, assert_error

pytestmark = pytest.mark.django_db

LADDER = [{"at_pct": 80, "do": "alert"}, {"at_pct": 100, "do": "set_reducing"}, {"at_pct": 120, "do": "flatten"}]
BODY = {"limit_type": "total_exposure", "threshold_value": "100000", "ladder": LADDER}


def test_a_limit_with_80_100_120_steps_is_created_and_shown_with_no_step_latched(trader_client):
    response = trader_client.post(URL, BODY, format="json")
    assert response.status_code == 201, response.content
    ladder = response.json()["ladder"]
    assert ladder == [
        {"at_pct": "80", "do": "alert", "latched": []},
        {"at_pct": "100", "do": "set_reducing", "latched": []},
        {"at_pct": "120", "do": "flatten", "latched": []},
    ]
    listed = trader_client.get(URL).json()["limits"][0]
    assert listed["ladder"] == ladder
    assert trader_client.get(f"{URL}/{listed['id']}").json()["ladder"] == ladder


def test_a_limit_without_a_ladder_shows_an_empty_one_and_null_removes_it(trader_client):
    created = trader_client.post(URL, {**BODY, "ladder": None}, format="json").json()
    assert created["ladder"] == []
    with_ladder = trader_client.patch(f"{URL}/{created['id']}", {"ladder": LADDER}, format="json")
    assert [step["do"] for step in with_ladder.json()["ladder"]] == ["alert", "set_reducing", "flatten"]
    removed = trader_client.patch(f"{URL}/{created['id']}", {"ladder": None}, format="json")
    assert removed.status_code == 200 and removed.json()["ladder"] == []


@pytest.mark.parametrize(
    ("ladder", "words"),
    [
        ([{"at_pct": 100, "do": "alert"}, {"at_pct": 80, "do": "flatten"}], "steps go up"),  # decreasing
        ([{"at_pct": 80, "do": "alert"}, {"at_pct": 80, "do": "flatten"}], "steps go up"),  # not strictly
        ([{"at_pct": 80, "do": "explode"}], "do must be one of"),  # unknown action
        ([], "non-empty list"),  # empty ladder
        ([{}], "exactly at_pct and do"),  # empty step
        ([{"at_pct": 0, "do": "alert"}], "positive number"),
        ([{"at_pct": "abc", "do": "alert"}], "positive number"),
        ([{"at_pct": 10001, "do": "alert"}], "up to 10000"),
        ([{"at_pct": "80.00001", "do": "alert"}], "at most 4 decimals"),
        ([{"at_pct": 80, "do": ["alert"]}], "do must be one of"),
        ([{"at_pct": 80, "do": "alert", "extra": 1}], "exactly at_pct and do"),
        ({"at_pct": 80, "do": "alert"}, "non-empty list"),
        ([{"at_pct": pct, "do": "alert"} for pct in range(1, 12)], "at most 10"),
    ],
)
def test_an_invalid_ladder_is_a_400_in_the_error_shape_and_nothing_is_written(trader_client, ladder, words):
    body = assert_error(trader_client.post(URL, {**BODY, "ladder": ladder}, format="json"), 400, "ladder")
    assert words in " ".join(body["errors"]["ladder"])
    assert trader_client.get(URL).json()["count"] == 0


def test_an_invalid_ladder_on_put_and_patch_is_a_400(trader_client):
    created = trader_client.post(URL, BODY, format="json").json()
    bad = [{"at_pct": 120, "do": "flatten"}, {"at_pct": 100, "do": "alert"}]
    assert_error(trader_client.patch(f"{URL}/{created['id']}", {"ladder": bad}, format="json"), 400, "ladder")
    assert_error(trader_client.put(f"{URL}/{created['id']}", {**BODY, "ladder": bad}, format="json"), 400, "ladder")
    assert len(trader_client.get(f"{URL}/{created['id']}").json()["ladder"]) == 3


def test_the_owner_of_an_officer_set_limit_may_add_a_step_but_not_remove_or_raise_one(trader_client, trader, officer):
    limit = RiskLimitFactory(
        user=trader,
        set_by=officer,
        limit_type="total_exposure",
        symbol=None,
        ladder=[{"at_pct": "100", "do": "flatten"}],
    )
    tighter = [{"at_pct": 80, "do": "alert"}, {"at_pct": 95, "do": "flatten"}]
    assert trader_client.patch(f"{URL}/{limit.pk}", {"ladder": tighter}, format="json").status_code == 200
    for looser in (None, [{"at_pct": 110, "do": "flatten"}], [{"at_pct": 95, "do": "alert"}]):
        response = trader_client.patch(f"{URL}/{limit.pk}", {"ladder": looser}, format="json")
        assert response.status_code == 403, (looser, response.content)
