"""Phase 4 risk limits: shapes, validation, filters, paging, ownership and the
officer-set rules of SPEC §3."""

import uuid
from decimal import Decimal

import pytest

from risk.models import LadderTrip, RiskLimit
from risk.tests.factories import RiskLimitFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/risk/limits"
SEED_BODY = {
    "symbol": "BTCUSDT",
    "limit_type": "position_size",
    "threshold_value": 10000.00,
    "warning_value": 8000.00,
    "enabled": True,
}


def assert_error(response, status, *fields):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == "error" and body["data"] is None and body["detail"]
    for field in fields:
        assert field in body["errors"], body
    return body


# --- create ------------------------------------------------------------------------------
def test_create_returns_the_seed_shape(trader_client, trader):
    response = trader_client.post(URL, SEED_BODY, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {"id", "user_id", "symbol", "limit_type", "threshold_value", "warning_value", "enabled"}
    assert body["user_id"] == str(trader.pk)
    assert body["threshold_value"] == "10000.00"
    assert body["warning_value"] == "8000.00"
    assert body["created_at"].endswith("Z")
    assert body["officer_set"] is False
    limit = RiskLimit.objects.get(pk=body["id"])
    assert limit.user_id == trader.pk and limit.set_by_id == trader.pk


def test_create_accepts_strings_and_keeps_full_precision(trader_client):
    body = {"limit_type": "margin_ratio", "threshold_value": "0.123456789", "warning_value": "0.1"}
    response = trader_client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["threshold_value"] == "0.123456789"
    assert response.json()["warning_value"] == "0.10"
    assert response.json()["symbol"] is None


def test_symbol_is_normalised(trader_client):
    response = trader_client.post(URL, {**SEED_BODY, "symbol": "ethusdt"}, format="json")
    assert response.json()["symbol"] == "ETHUSDT"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SEED_BODY, "threshold_value": 0}, "threshold_value"),
        ({**SEED_BODY, "threshold_value": -5}, "threshold_value"),
        ({**SEED_BODY, "threshold_value": "abc"}, "threshold_value"),
        ({**SEED_BODY, "warning_value": 10000}, "warning_value"),
        ({**SEED_BODY, "warning_value": 12000}, "warning_value"),
        ({**SEED_BODY, "warning_value": -1}, "warning_value"),
        ({**SEED_BODY, "limit_type": "nonsense"}, "limit_type"),
        ({**SEED_BODY, "symbol": "BTC/USDT"}, "symbol"),
        ({**SEED_BODY, "enabled": "maybe"}, "enabled"),
        ({**SEED_BODY, "colour": "red"}, "colour"),
        ({"symbol": "BTCUSDT", "threshold_value": 5}, "limit_type"),
        ({"limit_type": "leverage", "symbol": "BTCUSDT", "threshold_value": 5}, "symbol"),
        ({"limit_type": "margin_ratio", "threshold_value": 2}, "threshold_value"),
        ({"limit_type": "drawdown", "threshold_value": 150}, "threshold_value"),
    ],
)
def test_create_validation_errors(trader_client, body, field):
    assert_error(trader_client.post(URL, body, format="json"), 400, field)
    assert not RiskLimit.objects.exists()


def test_duplicate_is_a_409_including_the_null_symbol(trader_client):
    assert trader_client.post(URL, SEED_BODY, format="json").status_code == 201
    assert_error(trader_client.post(URL, SEED_BODY, format="json"), 409)
    everywhere = {"limit_type": "position_size", "threshold_value": 5000}
    assert trader_client.post(URL, everywhere, format="json").status_code == 201
    assert_error(trader_client.post(URL, everywhere, format="json"), 409)
    assert RiskLimit.objects.count() == 2


def test_same_limit_for_two_users_is_fine(trader_client, officer_client):
    assert trader_client.post(URL, SEED_BODY, format="json").status_code == 201
    assert officer_client.post(URL, SEED_BODY, format="json").status_code == 201


def test_trader_cannot_create_for_someone_else(trader_client, make_user):
    other = make_user()
    assert_error(trader_client.post(URL, {**SEED_BODY, "user_id": str(other.pk)}, format="json"), 404)
    assert not RiskLimit.objects.exists()


def test_officer_creates_an_officer_set_limit(officer_client, officer, trader):
    response = officer_client.post(URL, {**SEED_BODY, "user_id": str(trader.pk)}, format="json")
    assert response.status_code == 201
    assert response.json()["user_id"] == str(trader.pk)
    assert response.json()["officer_set"] is True
    limit = RiskLimit.objects.get()
    assert limit.user_id == trader.pk and limit.set_by_id == officer.pk


def test_officer_naming_an_unknown_user_is_a_400(officer_client):
    response = officer_client.post(URL, {**SEED_BODY, "user_id": "00000000-0000-0000-0000-000000000001"}, format="json")
    assert_error(response, 400, "user_id")


def test_unauthenticated_is_a_401(anon_client):
    assert_error(anon_client.get(URL), 401)


# --- list ---------------------------------------------------------------------------------
@pytest.fixture
def three_limits(trader):
    return [
        RiskLimitFactory(user=trader, symbol="BTCUSDT", limit_type="position_size"),
        RiskLimitFactory(user=trader, symbol="ETHUSDT", limit_type="position_size", enabled=False),
        RiskLimitFactory(user=trader, symbol=None, limit_type="total_exposure", warning_value=None),
    ]


@pytest.mark.parametrize(
    ("query", "queries"),
    [("", 1), ("limit=3", 2), ("limit=2", 2), ("limit=2&offset=2", 1), ("offset=3", 2), ("offset=9", 2)],
)
def test_list_count_on_every_page_shape_and_no_count_query_on_the_last_page(
    trader_client, three_limits, django_assert_num_queries, query, queries
):
    """A short last page knows the total (offset + its rows); a full page, or one past
    the end, counts in the database."""
    with django_assert_num_queries(queries):
        body = trader_client.get(f"{URL}?{query}").json()
    assert body["count"] == 3


def test_list_shape_and_newest_first(trader_client, three_limits, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        response = trader_client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    items = body["limits"]
    assert [item["id"] for item in items] == [str(limit.pk) for limit in reversed(three_limits)]
    assert set(items[0]) >= {"id", "symbol", "limit_type", "threshold_value", "warning_value", "enabled"}
    assert "user_id" not in items[0]
    assert items[0]["warning_value"] is None
    assert items[1]["threshold_value"] == "10000.00"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("symbol=BTCUSDT", 1),
        ("symbol=btcusdt", 1),
        ("limit_type=total_exposure", 1),
        ("limit_type=position_size", 2),
        ("enabled=false", 1),
        ("enabled=true", 2),
        ("enabled=true&limit_type=position_size", 1),
        ("limit=1", 1),
        ("limit=2000", 3),
        ("offset=2", 1),
    ],
)
def test_list_filters_and_paging(trader_client, three_limits, query, expected):
    response = trader_client.get(f"{URL}?{query}")
    assert response.status_code == 200
    assert len(response.json()["limits"]) == expected


@pytest.mark.parametrize(
    "query", ["limit_type=nonsense", "enabled=maybe", "limit=0", "limit=-1", "limit=abc", "offset=-1", "symbol=A/B"]
)
def test_list_bad_query_is_a_400(trader_client, query):
    assert_error(trader_client.get(f"{URL}?{query}"), 400)


@pytest.mark.parametrize(
    "url", [URL, "/api/v1/risk/alerts", "/api/v1/risk/circuit-breakers", "/api/v1/config/circuit-breakers"]
)
@pytest.mark.parametrize("offset", [2**63, 10**26])
def test_an_offset_past_any_database_integer_is_an_empty_page(trader_client, three_limits, url, offset):
    """Found by schemathesis: the database refused such an OFFSET and the list answered 500."""
    response = trader_client.get(f"{url}?offset={offset}")
    assert response.status_code == 200, response.content
    body = response.json()
    items = body["data"] if "data" in body else body["limits" if url == URL else "alerts"]
    assert items == []


def test_list_shows_only_own_limits_to_a_trader(trader_client, trader, make_user):
    other = make_user()
    RiskLimitFactory(user=other)
    mine = RiskLimitFactory(user=trader)
    body = trader_client.get(URL).json()
    assert [item["id"] for item in body["limits"]] == [str(mine.pk)]
    assert_error(trader_client.get(f"{URL}?user_id={other.pk}"), 404)
    assert trader_client.get(f"{URL}?user_id={trader.pk}").json()["count"] == 1


def test_officer_lists_everyone_with_user_ids(officer_client, trader, make_user, django_assert_max_num_queries):
    other = make_user()
    for index in range(30):
        RiskLimitFactory(user=trader if index % 2 else other, symbol=f"SYM{index}USDT")
    with django_assert_max_num_queries(2):
        body = officer_client.get(URL).json()
    assert body["count"] == 30
    assert {item["user_id"] for item in body["limits"]} == {str(trader.pk), str(other.pk)}
    only = officer_client.get(f"{URL}?user_id={trader.pk}").json()
    assert only["count"] == 15 and {item["user_id"] for item in only["limits"]} == {str(trader.pk)}


def test_the_list_read_once_compiled_serves_each_caller_their_own_rows(
    trader_client, trader, officer_client, make_user, api_client_for
):
    """The list's SQL is compiled once per shape (etrms.compiled_queries); every call
    runs it with its own user and filters: never the rows of the call that compiled it."""
    other = make_user()
    other_client = api_client_for(other)
    mine = RiskLimitFactory(user=trader, symbol="BTCUSDT")
    theirs = RiskLimitFactory(user=other, symbol="ETHUSDT")
    RiskLimitFactory(user=other, symbol="SOLUSDT")

    def ids(client, query=""):
        response = client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["limits"]]

    for _ in range(2):  # the second round reads shapes compiled in the first
        assert ids(trader_client) == [str(mine.pk)]
        assert len(ids(other_client)) == 2 and str(mine.pk) not in ids(other_client)
        assert ids(trader_client, "symbol=BTCUSDT") == [str(mine.pk)]
        assert ids(other_client, "symbol=BTCUSDT") == []
        assert ids(other_client, "symbol=ETHUSDT") == [str(theirs.pk)]
        assert ids(trader_client, "symbol=ETHUSDT") == []
        assert ids(officer_client, f"user_id={trader.pk}") == [str(mine.pk)]
        assert len(ids(officer_client, f"user_id={other.pk}")) == 2
        assert len(ids(officer_client)) == 3
        assert ids(trader_client, f"user_id={trader.pk}&limit_type=position_size&enabled=true") == [str(mine.pk)]
        assert ids(other_client, f"user_id={other.pk}&limit_type=position_size&enabled=false") == []


@pytest.mark.parametrize("as_officer", [False, True])
def test_a_list_item_is_the_limit_as_its_own_endpoint_shows_it(
    trader_client, officer_client, trader, officer, as_officer
):
    """The list reads rows as text and formats them in one loop; the item endpoints
    format the model instance: the same limit looks the same in both, ladder latches,
    officer-set flag, nulls and full precision included."""
    laddered = RiskLimitFactory(
        user=trader,
        symbol=None,
        limit_type="total_exposure",
        threshold_value=Decimal("1234567.12345678"),
        warning_value=None,
        ladder=[{"at_pct": "50", "do": "alert"}, {"at_pct": "80", "do": "cancel_orders"}],
    )
    LadderTrip.objects.create(
        limit=laddered,
        user=trader,
        latch_key=f"ladder:{laddered.pk}:*:50",
        limit_type="total_exposure",
        threshold=laddered.threshold_value,
        at_pct=Decimal("50"),
        action="alert",
        dry_run=True,
        client_order_id=uuid.uuid4().hex[:32],
    )
    RiskLimitFactory(user=trader, set_by=officer, symbol="ETHUSDT", enabled=False)
    RiskLimitFactory(
        user=trader, limit_type="leverage", symbol=None, threshold_value=Decimal("3.5"), warning_value=Decimal("2.75")
    )
    client = officer_client if as_officer else trader_client
    listed = client.get(f"{URL}?user_id={trader.pk}").json()["limits"]
    assert len(listed) == 3
    for item in listed:
        assert item == client.get(f"{URL}/{item['id']}").json()
    by_id = {item["id"]: item for item in listed}
    shown = by_id[str(laddered.pk)]
    assert shown["threshold_value"] == "1234567.12345678" and shown["warning_value"] is None
    assert [len(step["latched"]) for step in shown["ladder"]] == [1, 0]
    assert [item["officer_set"] for item in listed].count(True) == 1
    assert ("user_id" in shown) is as_officer


def test_the_list_shows_each_limit_as_it_is_now_after_every_change(trader_client, officer_client, trader):
    """A limit's output is kept per database row (risk.api.limits_output): a change is a
    new row, shown at once; the officer's view (with `user_id`) is kept apart."""
    limit = RiskLimitFactory(user=trader, threshold_value=Decimal("10000"), warning_value=Decimal("8000"))

    def listed(client):
        (item,) = client.get(f"{URL}?user_id={trader.pk}").json()["limits"]
        return item

    for _ in range(2):
        assert listed(trader_client)["threshold_value"] == "10000.00" and "user_id" not in listed(trader_client)
    assert listed(officer_client)["user_id"] == str(trader.pk)
    changes = [
        {"threshold_value": "9000"},
        {"warning_value": None},
        {"enabled": False},
        {"ladder": [{"at_pct": 50, "do": "alert"}]},
        {"ladder": None},
    ]
    for change in changes:
        response = trader_client.patch(f"{URL}/{limit.pk}", change, format="json")
        assert response.status_code == 200, response.content
        assert listed(trader_client) == response.json()
        assert listed(officer_client) == officer_client.get(f"{URL}/{limit.pk}").json()
    final = listed(trader_client)
    assert (final["threshold_value"], final["warning_value"], final["enabled"], final["ladder"]) == (
        "9000.00",
        None,
        False,
        [],
    )


# --- item ----------------------------------------------------------------------------------
def test_get_put_patch_delete(trader_client, trader):
    limit = RiskLimitFactory(user=trader)
    item_url = f"{URL}/{limit.pk}"
    got = trader_client.get(item_url).json()
    listed = trader_client.get(URL).json()["limits"][0]
    assert got == listed

    put = trader_client.put(
        item_url, {"symbol": "BTCUSDT", "limit_type": "position_size", "threshold_value": "20000"}, format="json"
    )
    assert put.status_code == 200, put.content
    assert put.json()["threshold_value"] == "20000.00"
    assert put.json()["warning_value"] is None  # PUT replaces: omitted optional fields take defaults

    patch = trader_client.patch(item_url, {"warning_value": 15000}, format="json")
    assert patch.status_code == 200
    assert patch.json()["warning_value"] == "15000.00" and patch.json()["threshold_value"] == "20000.00"
    assert patch.json()["enabled"] is True

    assert trader_client.patch(item_url, {"enabled": False}, format="json").json()["enabled"] is False

    deleted = trader_client.delete(item_url)
    assert deleted.status_code == 204
    assert not RiskLimit.objects.filter(pk=limit.pk).exists()
    assert_error(trader_client.get(item_url), 404)


def test_patch_validation(trader_client, trader):
    limit = RiskLimitFactory(user=trader, threshold_value=10000, warning_value=8000)
    item_url = f"{URL}/{limit.pk}"
    assert_error(trader_client.patch(item_url, {"threshold_value": 7000}, format="json"), 400, "warning_value")
    assert_error(trader_client.patch(item_url, {"limit_type": "bogus"}, format="json"), 400, "limit_type")
    assert_error(trader_client.patch(item_url, {"user_id": str(trader.pk)}, format="json"), 400, "user_id")
    limit.refresh_from_db()
    assert limit.threshold_value == 10000


def test_patch_into_a_duplicate_is_a_409(trader_client, trader):
    RiskLimitFactory(user=trader, symbol="BTCUSDT")
    other = RiskLimitFactory(user=trader, symbol="ETHUSDT")
    assert_error(trader_client.patch(f"{URL}/{other.pk}", {"symbol": "BTCUSDT"}, format="json"), 409)


def test_another_users_limit_is_a_404_everywhere(trader_client, make_user):
    limit = RiskLimitFactory(user=make_user())
    item_url = f"{URL}/{limit.pk}"
    assert_error(trader_client.get(item_url), 404)
    assert_error(trader_client.patch(item_url, {"threshold_value": 1}, format="json"), 404)
    assert_error(trader_client.put(item_url, {"limit_type": "leverage", "threshold_value": 1}, format="json"), 404)
    assert_error(trader_client.delete(item_url), 404)
    assert RiskLimit.objects.filter(pk=limit.pk).exists()


def test_officer_reads_and_changes_anyones_limit(officer_client, officer, trader):
    limit = RiskLimitFactory(user=trader)
    item_url = f"{URL}/{limit.pk}"
    assert officer_client.get(item_url).json()["user_id"] == str(trader.pk)
    response = officer_client.patch(item_url, {"threshold_value": 9000}, format="json")
    assert response.status_code == 200
    assert response.json()["officer_set"] is True  # the officer's change makes it officer-set
    limit.refresh_from_db()
    assert limit.set_by_id == officer.pk


# --- officer-set limits: the owner may only tighten ------------------------------------------
@pytest.fixture
def officer_set_limit(officer, trader):
    return RiskLimitFactory(user=trader, set_by=officer, threshold_value=10000, warning_value=8000)


@pytest.mark.parametrize(
    "change",
    [
        {"threshold_value": 9000},
        {"warning_value": 7000},
        {"threshold_value": 9000, "warning_value": 5000},
        {"enabled": True},
    ],
)
def test_owner_may_tighten_an_officer_set_limit(trader_client, officer_set_limit, change):
    response = trader_client.patch(f"{URL}/{officer_set_limit.pk}", change, format="json")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "change",
    [
        {"threshold_value": 11000},
        {"warning_value": 9000},
        {"warning_value": None},
        {"enabled": False},
        {"symbol": "ETHUSDT"},
        {"limit_type": "total_exposure", "symbol": None},
    ],
)
def test_owner_may_not_loosen_an_officer_set_limit(trader_client, officer_set_limit, change):
    body = assert_error(trader_client.patch(f"{URL}/{officer_set_limit.pk}", change, format="json"), 403)
    assert "risk officer" in body["message"]
    officer_set_limit.refresh_from_db()
    assert officer_set_limit.threshold_value == 10000 and officer_set_limit.enabled


def test_owner_may_not_delete_an_officer_set_limit(trader_client, officer_client, officer_set_limit):
    assert_error(trader_client.delete(f"{URL}/{officer_set_limit.pk}"), 403)
    assert officer_client.delete(f"{URL}/{officer_set_limit.pk}").status_code == 204


def test_owner_put_that_drops_the_warning_loosens(trader_client, officer_set_limit):
    body = {"symbol": "BTCUSDT", "limit_type": "position_size", "threshold_value": 9000}
    assert_error(trader_client.put(f"{URL}/{officer_set_limit.pk}", body, format="json"), 403)
    body["warning_value"] = 8000
    assert trader_client.put(f"{URL}/{officer_set_limit.pk}", body, format="json").status_code == 200


def test_rate_limit_scope_is_risk(trader_client, settings):
    settings.RATE_LIMITS = dict(settings.RATE_LIMITS, risk="2/min")
    assert trader_client.get(URL).status_code == 200
    assert trader_client.get(URL).status_code == 200
    assert trader_client.get(URL).status_code == 429
