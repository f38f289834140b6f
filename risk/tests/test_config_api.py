"""ETRMS `/config/*`: global singleton, per-symbol and per-exchange configs, save (and
its path safety), reset, the load_config command, roles and validation."""

import json
import os

import pytest
from django.core.management import CommandError, call_command

from risk.models import CircuitBreaker, ExchangeConfig, GlobalConfig, SymbolConfig
from risk.tests.factories import CircuitBreakerFactory
from risk.tests.test_limits_api import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/config"


@pytest.fixture
def config_dir(settings, tmp_path):
    settings.CONFIG_DIR = tmp_path / "config"
    return settings.CONFIG_DIR


def test_global_defaults_and_numbers(trader_client):
    response = trader_client.get(f"{URL}/global")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    data = body["data"]
    assert data["dry_run"] is True
    assert data["max_total_exposure"] == 1000000.0 and data["max_leverage"] == 10.0
    assert data["max_price_age_seconds"] == 10 and data["alert_cooldown_seconds"] == 300
    assert GlobalConfig.objects.count() == 1


def test_update_global_is_partial(officer_client):
    response = officer_client.put(
        f"{URL}/global",
        {"settings": {"max_leverage": "5", "dry_run": False, "max_total_exposure": None}},
        format="json",
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["max_leverage"] == 5.0 and data["dry_run"] is False and data["max_total_exposure"] is None
    assert data["daily_loss_limit"] == 50000.0  # untouched
    config = GlobalConfig.objects.get()
    assert config.max_leverage == 5 and config.dry_run is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"settings": {"max_leverage": -1}}, "settings.max_leverage"),
        ({"settings": {"max_drawdown_pct": 101}}, "settings.max_drawdown_pct"),
        ({"settings": {"max_margin_ratio": 1.5}}, "settings.max_margin_ratio"),
        ({"settings": {"dry_run": "perhaps"}}, "settings.dry_run"),
        ({"settings": {"max_price_age_seconds": 0}}, "settings.max_price_age_seconds"),
        ({"settings": {"colour": "red"}}, "settings.colour"),
        ({"settings": "dry_run"}, "settings"),
        ({"max_leverage": 5}, "settings"),
    ],
)
def test_update_global_validation(officer_client, body, field):
    assert_error(officer_client.put(f"{URL}/global", body, format="json"), 400, field)
    assert officer_client.get(f"{URL}/global").json()["data"]["max_leverage"] == 10.0


def test_symbol_config_created_on_put_and_defaults_when_absent(officer_client, trader_client):
    absent = trader_client.get(f"{URL}/symbols/BTCUSDT").json()["data"]
    assert absent == {
        "symbol": "BTCUSDT",
        "max_position_size": None,
        "max_leverage": None,
        "trading_enabled": True,
        "max_order_notional": None,
        "configured": False,
        "updated_at": None,
    }
    assert not SymbolConfig.objects.exists()

    response = officer_client.put(f"{URL}/symbols/btcusdt", {"settings": {"max_position_size": 50000}}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["symbol"] == "BTCUSDT" and data["max_position_size"] == 50000.0 and data["configured"] is True
    officer_client.put(f"{URL}/symbols/BTCUSDT", {"settings": {"trading_enabled": False}}, format="json")
    config = SymbolConfig.objects.get()
    assert config.max_position_size == 50000 and config.trading_enabled is False

    listed = trader_client.get(f"{URL}/symbols").json()["data"]
    assert list(listed) == ["BTCUSDT"] and listed["BTCUSDT"]["trading_enabled"] is False


def test_exchange_config(officer_client, trader_client):
    assert trader_client.get(f"{URL}/exchanges/paper").json()["data"]["configured"] is False
    response = officer_client.put(
        f"{URL}/exchanges/binanceusdm", {"settings": {"max_exposure": 250000, "testnet": True}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["data"]["max_exposure"] == 250000.0
    assert trader_client.get(f"{URL}/exchanges").json()["data"]["binanceusdm"]["testnet"] is True
    assert ExchangeConfig.objects.get().exchange == "binanceusdm"


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("symbols/BTC-USDT", {"settings": {"max_leverage": 3}}, "symbol"),
        ("symbols/BTCUSDT", {"settings": {"max_notional": 3}}, "settings.max_notional"),
        ("symbols/BTCUSDT", {"settings": {"max_leverage": "lots"}}, "settings.max_leverage"),
        ("exchanges/Bin ance", {"settings": {"enabled": False}}, "exchange"),
        ("exchanges/paper", {"settings": {"rate": 3}}, "settings.rate"),
    ],
)
def test_symbol_and_exchange_validation(officer_client, url, body, field):
    assert_error(officer_client.put(f"{URL}/{url}", body, format="json"), 400, field)
    assert not SymbolConfig.objects.exists() and not ExchangeConfig.objects.exists()


def test_get_all(trader_client, officer_client):
    officer_client.put(f"{URL}/symbols/ETHUSDT", {"settings": {"max_leverage": 3}}, format="json")
    CircuitBreakerFactory(name="cb")
    for url in (URL, f"{URL}/"):
        data = trader_client.get(url).json()["data"]
        assert set(data) == {"global", "symbols", "exchanges", "circuit_breakers"}
        assert data["symbols"]["ETHUSDT"]["max_leverage"] == 3.0
        assert [breaker["name"] for breaker in data["circuit_breakers"]] == ["cb"]


def test_writes_are_officer_only(trader_client, config_dir):
    for method, url, body in [
        ("put", "global", {"settings": {"dry_run": False}}),
        ("put", "symbols/BTCUSDT", {"settings": {"max_leverage": 2}}),
        ("put", "exchanges/paper", {"settings": {"enabled": False}}),
        ("post", "save", {}),
        ("post", "reset", {}),
    ]:
        assert_error(getattr(trader_client, method)(f"{URL}/{url}", body, format="json"), 403)
    assert GlobalConfig.objects.filter(dry_run=False).count() == 0
    assert not config_dir.exists() or not any(config_dir.iterdir())


def test_reset_restores_defaults_and_keeps_breakers(officer_client):
    officer_client.put(f"{URL}/global", {"settings": {"dry_run": False, "max_leverage": 3}}, format="json")
    officer_client.put(f"{URL}/symbols/BTCUSDT", {"settings": {"max_leverage": 3}}, format="json")
    officer_client.put(f"{URL}/exchanges/paper", {"settings": {"enabled": False}}, format="json")
    CircuitBreakerFactory(name="keep-me")
    response = officer_client.post(f"{URL}/reset")
    assert response.status_code == 200
    assert response.json()["data"]["global"]["dry_run"] is True
    config = GlobalConfig.objects.get()
    assert config.dry_run is True and config.max_leverage == 10
    assert not SymbolConfig.objects.exists() and not ExchangeConfig.objects.exists()
    assert CircuitBreaker.objects.filter(name="keep-me").exists()


# --- save: snapshot content and path safety ----------------------------------------------------
def test_save_writes_a_snapshot_under_config_dir(officer_client, config_dir):
    officer_client.put(f"{URL}/symbols/BTCUSDT", {"settings": {"max_position_size": "12345.678"}}, format="json")
    CircuitBreakerFactory(name="cb", threshold="2.5", condition_type="trailing_stop")
    response = officer_client.post(f"{URL}/save", {"config_path": "desk/today.json"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["config_path"] == "desk/today.json"
    snapshot = json.loads((config_dir / "desk" / "today.json").read_text())
    assert snapshot["global"]["dry_run"] is True
    assert snapshot["symbols"]["BTCUSDT"]["max_position_size"] == "12345.678"
    assert snapshot["circuit_breakers"][0]["name"] == "cb"
    assert snapshot["circuit_breakers"][0]["threshold"] == "2.5"
    assert not [name for name in os.listdir(config_dir / "desk") if name.endswith(".tmp")]


def test_save_default_path(officer_client, config_dir):
    response = officer_client.post(f"{URL}/save", {}, format="json")
    assert response.status_code == 200
    assert (config_dir / "etrms-config.json").is_file()


@pytest.mark.parametrize(
    "config_path",
    [
        "../escape.json",
        "desk/../../escape.json",
        "desk/./x.json",
        "/tmp/escape.json",
        "/abs/inside.json",
        "~/x.json",
        "notjson.txt",
        "desk/.json",
        "a\\..\\b.json",
        "nul\x00.json",
    ],
)
def test_save_rejects_unsafe_paths(officer_client, config_dir, tmp_path, config_path):
    response = officer_client.post(f"{URL}/save", {"config_path": config_path}, format="json")
    assert_error(response, 400, "config_path")
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written == []


def test_save_rejects_symlinks_out_of_config_dir(officer_client, config_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    config_dir.mkdir(parents=True)
    (config_dir / "link").symlink_to(outside, target_is_directory=True)
    (config_dir / "file.json").symlink_to(outside / "target.json")
    for config_path in ("link/x.json", "file.json"):
        assert_error(officer_client.post(f"{URL}/save", {"config_path": config_path}, format="json"), 400)
    assert list(outside.iterdir()) == []
    # a symlink even pointing inside is refused (no symlink on the way)
    (config_dir / "inner").mkdir()
    (config_dir / "alias").symlink_to(config_dir / "inner", target_is_directory=True)
    assert_error(officer_client.post(f"{URL}/save", {"config_path": "alias/x.json"}, format="json"), 400)
    assert list((config_dir / "inner").iterdir()) == []


def test_save_then_load_config_round_trip(officer_client, config_dir):
    officer_client.put(f"{URL}/global", {"settings": {"max_leverage": "4.25", "dry_run": False}}, format="json")
    officer_client.put(f"{URL}/symbols/SOLUSDT", {"settings": {"max_position_size": 7000}}, format="json")
    officer_client.put(f"{URL}/exchanges/okx", {"settings": {"max_exposure": 1}}, format="json")
    CircuitBreakerFactory(name="tp", condition_type="pnl", threshold="750.5", additional_params={"direction": "profit"})
    officer_client.post(f"{URL}/save", {"config_path": "snap.json"}, format="json")

    officer_client.post(f"{URL}/reset")
    CircuitBreaker.objects.filter(name="tp").update(threshold=1)
    CircuitBreakerFactory(name="extra")

    call_command("load_config", "snap.json", "--prune-breakers", stdout=open(os.devnull, "w"))  # noqa: SIM115
    config = GlobalConfig.objects.get()
    assert config.max_leverage.normalize() == 4.25 and config.dry_run is False
    assert SymbolConfig.objects.get(symbol="SOLUSDT").max_position_size == 7000
    assert ExchangeConfig.objects.get(exchange="okx").max_exposure == 1
    assert CircuitBreaker.objects.get(name="tp").threshold == 750.5
    assert not CircuitBreaker.objects.filter(name="extra").exists()


def test_load_config_rejects_bad_snapshots_without_writing(config_dir):
    config_dir.mkdir(parents=True)
    (config_dir / "bad.json").write_text(json.dumps({"global": {"max_leverage": -3}, "symbols": {"BTCUSDT": {}}}))
    (config_dir / "junk.json").write_text("{not json")
    with pytest.raises(CommandError):
        call_command("load_config", "bad.json")
    with pytest.raises(CommandError):
        call_command("load_config", "junk.json")
    with pytest.raises(CommandError):
        call_command("load_config", "missing.json")
    assert not SymbolConfig.objects.exists()
