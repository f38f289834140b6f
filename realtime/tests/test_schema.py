"""The cache endpoints are in the OpenAPI schema, and generating it warns about nothing."""

import pytest
import yaml
from django.core.management import call_command


@pytest.mark.django_db
def test_schema_has_the_cache_endpoints_and_no_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--file", str(out))  # raises on any warning
    paths = yaml.safe_load(out.read_text())["paths"]
    expected = {
        "/api/v1/cache/health": {"get"},
        "/api/v1/cache/stats": {"get"},
        "/api/v1/cache/market-data/{symbol}": {"get"},
        "/api/v1/cache/price/{symbol}": {"get"},
        "/api/v1/cache/price-alert": {"post"},
        "/api/v1/cache/price-alerts": {"get"},
        "/api/v1/cache/price-alerts/{alert_id}": {"delete"},
        "/api/v1/cache/{cache_type}": {"delete"},
        "/api/v1/cache/invalidate": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert paths["/api/v1/cache/health"]["get"].get("security") in ([], [{}])
