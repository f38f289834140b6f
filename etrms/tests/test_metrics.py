"""`/metrics` (etrms/metrics.py): who may scrape it, and that the series move when the
things they count happen (real services, the embedded Redis as broker)."""

import urllib.request

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from etrms import metrics
from jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _networks_forgotten():
    metrics._allowed_networks.cache_clear()
    yield
    metrics._allowed_networks.cache_clear()


def _sample(name: str, labels: dict) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_answer_a_scraper_on_an_allowed_address(anon_client, trader_client):
    assert trader_client.get("/api/v1/auth/me").status_code == 200
    response = anon_client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert 'etrms_http_request_duration_seconds_bucket{le="0.005",method="GET",route="api/v1/auth/me"}' in body
    assert 'etrms_http_responses_total{method="GET",route="api/v1/auth/me",status="200"}' in body
    assert 'etrms_queue_depth{queue="critical"}' in body


def test_metrics_refuse_other_addresses_unless_a_risk_officer_asks(anon_client, trader_client, officer_client):
    outside = {"REMOTE_ADDR": "203.0.113.7"}
    refused = anon_client.get("/metrics", **outside)
    assert refused.status_code == 403
    assert refused.json()["status"] == "error"
    assert trader_client.get("/metrics", **outside).status_code == 403
    assert officer_client.get("/metrics", **outside).status_code == 200


@override_settings(METRICS_ALLOWED_CIDRS=["10.1.0.0/16"])
def test_metrics_read_the_client_address_through_the_trusted_proxies(anon_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    from rest_framework.settings import api_settings

    api_settings.reload()
    try:
        # nginx (127.0.0.1) forwards a scraper on the allowed network: allowed.
        allowed = anon_client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.1.2.3")
        assert allowed.status_code == 200
        # A client from outside cannot borrow the proxy's loopback address.
        forwarded = anon_client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
        assert forwarded.status_code == 403
        # Nor claim an allowed address in a header the proxy did not write.
        spoofed = anon_client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.1.2.3, 203.0.113.7")
        assert spoofed.status_code == 403
    finally:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
        api_settings.reload()


@pytest.mark.django_db(transaction=True)  # job_execute closes old connections, as a worker does
def test_a_finished_job_is_counted_by_handler_and_status(trader):
    from jobs.services.execution import job_execute

    labels = {"handler": "ping", "status": JobStatus.COMPLETED}
    before = _sample("etrms_jobs_finished_total", labels)
    duration_before = _sample("etrms_job_duration_seconds_count", labels)
    # The row alone, never published: a session worker of other tests must not run it first.
    job = Job.objects.create(name="ping", args={}, user=trader, status=JobStatus.PENDING)
    assert job_execute(job_id=str(job.pk), attempt=job.attempt, worker="metrics-test") == JobStatus.COMPLETED
    assert _sample("etrms_jobs_finished_total", labels) == before + 1
    assert _sample("etrms_job_duration_seconds_count", labels) == duration_before + 1


def test_a_raised_alert_is_counted_by_type(trader):
    from risk.services.alerts import AlertSpec, alert_raise

    labels = {"alert_type": "price_alert"}
    before = _sample("etrms_alerts_raised_total", labels)
    spec = AlertSpec(key="metrics-test", alert_type="price_alert", severity="low", message="BTCUSDT above 1")
    assert alert_raise(user_id=trader.pk, spec=spec) is not None
    assert alert_raise(user_id=trader.pk, spec=spec) is None  # already open: not raised again
    assert _sample("etrms_alerts_raised_total", labels) == before + 1


def test_a_process_serves_its_metrics_on_its_own_port(settings):
    from etrms.tests.test_database_outage import _free_port

    port = _free_port()
    settings.METRICS_PORTS = {**settings.METRICS_PORTS, "feed": port}
    assert metrics.metrics_server_start("feed") == port
    metrics.FEED_TICKS.inc()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "etrms_feed_ticks_total" in body
    settings.METRICS_PORTS = {**settings.METRICS_PORTS, "feed": 0}
    assert metrics.metrics_server_start("feed") is None
