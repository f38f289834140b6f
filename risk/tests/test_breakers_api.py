"""ETRMS circuit breakers through `/risk/circuit-breakers*` and `/config/circuit-breakers*`
(two views of the same rows): envelope, JSON numbers, per-type validation, roles."""

import pytest

from risk.models import CircuitBreaker
from risk.tests.factories import CircuitBreakerFactory
from risk.tests.test_limits_api import assert_error

pytestmark = pytest.mark.django_db

RISK_URL = "/api/v1/risk/circuit-breakers"
CONFIG_URL = "/api/v1/config/circuit-breakers"
BODY = {
    "name": "dd-10",
    "description": "Close positions down 10% from their peak",
    "condition_type": "max_drawdown",
    "threshold": 10.0,
    "action": "close_position",
    "symbols": ["BTCUSDT", "ethusdt"],
    "exchanges": None,
    "enabled": True,
    "additional_params": {},
}


def test_add_list_enable_disable_delete_on_risk_path(officer_client, trader_client):
    created = officer_client.post(RISK_URL, BODY, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "success" and "dd-10" in body["message"]
    data = body["data"]
    assert data["threshold"] == 10.0 and isinstance(data["threshold"], float)
    assert data["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert data["exchanges"] is None and data["cooldown_seconds"] == 300 and data["trigger_count"] == 0

    listed = trader_client.get(RISK_URL).json()
    assert listed["status"] == "success"
    assert [item["name"] for item in listed["data"]] == ["dd-10"]

    disabled = officer_client.put(f"{RISK_URL}/dd-10/disable")
    assert disabled.status_code == 200 and disabled.json()["data"]["enabled"] is False
    assert CircuitBreaker.objects.get(name="dd-10").enabled is False
    assert officer_client.put(f"{RISK_URL}/dd-10/enable").json()["data"]["enabled"] is True

    removed = officer_client.delete(f"{RISK_URL}/dd-10")
    assert removed.status_code == 200
    assert removed.json() == {"status": "success", "message": "Circuit breaker 'dd-10' removed", "data": None}
    assert not CircuitBreaker.objects.exists()


def test_config_path_is_the_same_rows(officer_client):
    created = officer_client.post(CONFIG_URL, {"circuit_breaker": BODY}, format="json")
    assert created.status_code == 201, created.content
    assert officer_client.get(RISK_URL).json()["data"][0]["name"] == "dd-10"

    updated = officer_client.put(
        f"{CONFIG_URL}/dd-10", {"updates": {"threshold": "12.5", "cooldown_seconds": 60}}, format="json"
    )
    assert updated.status_code == 200, updated.content
    assert updated.json()["data"]["threshold"] == 12.5 and updated.json()["data"]["cooldown_seconds"] == 60
    assert officer_client.get(CONFIG_URL).json()["data"][0]["threshold"] == 12.5

    assert officer_client.delete(f"{CONFIG_URL}/dd-10").json()["data"] is None
    assert not CircuitBreaker.objects.exists()


def test_traders_read_but_do_not_write(trader_client):
    CircuitBreakerFactory(name="existing")
    assert trader_client.get(RISK_URL).status_code == 200
    assert trader_client.get(CONFIG_URL).status_code == 200
    assert_error(trader_client.post(RISK_URL, BODY, format="json"), 403)
    assert_error(trader_client.post(CONFIG_URL, {"circuit_breaker": BODY}, format="json"), 403)
    assert_error(trader_client.put(f"{RISK_URL}/existing/disable"), 403)
    assert_error(trader_client.put(f"{CONFIG_URL}/existing", {"updates": {"threshold": 1}}, format="json"), 403)
    assert_error(trader_client.delete(f"{RISK_URL}/existing"), 403)
    assert CircuitBreaker.objects.get(name="existing").enabled


def test_duplicate_name_is_a_409(officer_client):
    assert officer_client.post(RISK_URL, BODY, format="json").status_code == 201
    assert_error(officer_client.post(RISK_URL, BODY, format="json"), 409)
    assert_error(officer_client.post(CONFIG_URL, {"circuit_breaker": BODY}, format="json"), 409)


def test_rename_onto_an_existing_name_is_a_409(officer_client):
    CircuitBreakerFactory(name="a")
    CircuitBreakerFactory(name="b")
    assert_error(officer_client.put(f"{CONFIG_URL}/a", {"updates": {"name": "b"}}, format="json"), 409)


def test_unknown_breaker_is_a_404(officer_client):
    assert_error(officer_client.delete(f"{RISK_URL}/nope"), 404)
    assert_error(officer_client.put(f"{RISK_URL}/nope/enable"), 404)
    assert_error(officer_client.put(f"{CONFIG_URL}/nope", {"updates": {"threshold": 1}}, format="json"), 404)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"condition_type": "moon_phase"}, "condition_type"),
        ({"action": "panic"}, "action"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": "x"}, "threshold"),
        ({"name": ""}, "name"),
        ({"name": "has space"}, "name"),
        ({"symbols": []}, "symbols"),
        ({"symbols": ["BTC/USDT"]}, "symbols"),
        ({"exchanges": ["Not An Id"]}, "exchanges"),
        ({"exchanges": "binance"}, "exchanges"),
        ({"cooldown_seconds": -1}, "cooldown_seconds"),
        ({"unexpected": 1}, "unexpected"),
        # additional_params, per type
        ({"additional_params": {"foo": 1}}, "additional_params"),
        ({"additional_params": "x"}, "additional_params"),
        ({"condition_type": "pnl", "threshold": 100, "additional_params": {"direction": "up"}}, "additional_params"),
        ({"condition_type": "pnl", "threshold": 100, "additional_params": {"window_seconds": 60}}, "additional_params"),
        ({"condition_type": "volatility", "additional_params": {"window_seconds": 5}}, "additional_params"),
        ({"condition_type": "volatility", "additional_params": {"window_seconds": "300"}}, "additional_params"),
        (
            {"condition_type": "time_based", "threshold": 60, "additional_params": {"flat_windows": []}},
            "additional_params",
        ),
        (
            {
                "condition_type": "time_based",
                "threshold": 60,
                "additional_params": {"flat_windows": [{"start": "25:00", "end": "01:00"}]},
            },
            "additional_params",
        ),
        (
            {
                "condition_type": "time_based",
                "threshold": 60,
                "additional_params": {"flat_windows": [{"start": "21:00", "end": "22:00", "tz": "Mars/Olympus"}]},
            },
            "additional_params",
        ),
        ({"condition_type": "consecutive_losses", "threshold": 2.5}, "threshold"),
        ({"condition_type": "trailing_stop", "threshold": 100}, "threshold"),
        ({"additional_params": {"reduce_pct": 50}}, "additional_params"),  # reduce_pct without the reduce action
        ({"action": "reduce_position_size", "additional_params": {"reduce_pct": 0}}, "additional_params"),
        ({"action": "reduce_position_size", "additional_params": {"reduce_pct": 100}}, "additional_params"),
    ],
)
def test_validation_errors(officer_client, changes, field):
    response = officer_client.post(RISK_URL, {**BODY, **changes}, format="json")
    assert_error(response, 400, field)
    assert not CircuitBreaker.objects.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"condition_type": "pnl", "threshold": 500, "additional_params": {"direction": "profit"}},
        {"condition_type": "volatility", "threshold": 5, "additional_params": {"window_seconds": 600}},
        {
            "condition_type": "time_based",
            "threshold": 3600,
            "additional_params": {"flat_windows": [{"start": "21:55", "end": "22:05", "tz": "UTC"}]},
        },
        {"condition_type": "consecutive_losses", "threshold": 3, "action": "cancel_all_orders"},
        {"action": "reduce_position_size", "additional_params": {"reduce_pct": 25}},
        {"condition_type": "max_position_size", "threshold": "100000", "exchanges": ["paper", "binanceusdm"]},
        {"condition_type": "trailing_stop", "threshold": 7.5, "additional_params": None},
    ],
)
def test_valid_definitions_of_each_type(officer_client, changes):
    response = officer_client.post(RISK_URL, {**BODY, **changes}, format="json")
    assert response.status_code == 201, response.content


def test_update_revalidates_the_whole_definition(officer_client):
    CircuitBreakerFactory(name="pnl-stop", condition_type="pnl", threshold=100, additional_params={"direction": "loss"})
    # switching the condition leaves `direction`, which max_drawdown does not accept
    response = officer_client.put(
        f"{CONFIG_URL}/pnl-stop", {"updates": {"condition_type": "max_drawdown"}}, format="json"
    )
    assert_error(response, 400, "additional_params")
    assert CircuitBreaker.objects.get(name="pnl-stop").condition_type == "pnl"


def test_config_bodies_must_be_wrapped(officer_client):
    assert_error(officer_client.post(CONFIG_URL, BODY, format="json"), 400, "circuit_breaker")
    CircuitBreakerFactory(name="x")
    assert_error(officer_client.put(f"{CONFIG_URL}/x", {"threshold": 5}, format="json"), 400, "updates")
    assert_error(officer_client.put(f"{CONFIG_URL}/x", {"updates": {"bogus": 5}}, format="json"), 400, "updates.bogus")


def test_rate_limit_scopes(officer_client, settings):
    settings.RATE_LIMITS = dict(settings.RATE_LIMITS, risk="1/min", config="1/min")
    assert officer_client.get(RISK_URL).status_code == 200
    assert officer_client.get(RISK_URL).status_code == 429
    assert officer_client.get(CONFIG_URL).status_code == 200  # its own bucket
    assert officer_client.get(CONFIG_URL).status_code == 429


def test_the_document_of_a_breaker_update_is_the_partial_definition_and_refuses_other_keys(client):
    document = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    body = document["paths"]["/api/v1/config/circuit-breakers/{name}"]["put"]["requestBody"]
    assert body["required"] is True
    wrapper = document["components"]["schemas"][body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert wrapper["required"] == ["updates"] and wrapper["additionalProperties"] is False
    updates = document["components"]["schemas"][wrapper["properties"]["updates"]["$ref"].rsplit("/", 1)[1]]
    assert "required" not in updates and updates["minProperties"] == 1 and updates["additionalProperties"] is False
    assert {"condition_type", "threshold", "action", "symbols", "cooldown_seconds"} <= set(updates["properties"])
