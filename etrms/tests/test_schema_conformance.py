"""The OpenAPI document describes what the API answers (issue 10 C6): schemathesis
generates requests from `/api/schema/` for every operation and checks each response,
status code included, against the document, as a trader and as a risk officer.

Bounded and deterministic: a few derandomized examples per operation, positive data
only (what the document says is valid), no example database.
"""

import json
import re

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from conftest import access_token_for

EXAMPLES_PER_OPERATION = 2
# What no OpenAPI document can say: a rule that compares two fields, or the request with
# the database or the clock. A schema-valid request may be refused for these and only
# these, each the API's own error (field, and the message as a regular expression), each
# said in words in the document.
BEYOND_THE_DOCUMENT = {
    "POST /api/v1/risk/limits": {
        ("warning_value", re.escape("Must be below threshold_value.")),
        ("user_id", re.escape("Unknown user.")),  # an officer naming a user who does not exist
        ("ladder", r"(?:step \d+: at_pct must be above the previous step's \([\d.]+\); steps go up\.\s*)+"),
    },
    "POST /api/v1/jobs/scheduled/register": {("run_at", re.escape("Must be in the future."))},
    **{
        label: {("additional_params", r"flat_windows\[\d+\]: start and end must differ\.")}
        for label in ("POST /api/v1/risk/circuit-breakers", "POST /api/v1/config/circuit-breakers")
    },
}


def _error_leaves(errors, field=None):
    """(field, message) of every message in SPEC §3's `errors`, nested ones by their own key."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            yield from _error_leaves(value, key)
    elif isinstance(errors, list):
        for item in errors:
            yield from _error_leaves(item, field)
    else:
        yield field, str(errors)


def _refused_beyond_the_document(label: str, response) -> bool:
    allowed = BEYOND_THE_DOCUMENT.get(label)
    if response.status_code != 400 or not allowed:
        return False
    leaves = list(_error_leaves(response.json().get("errors") or {}))
    return bool(leaves) and all(
        any(field == rule_field and re.fullmatch(rule, message) for rule_field, rule in allowed)
        for field, message in leaves
    )


def _document() -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema))


def _conformance_failures(schema, token: str) -> list[str]:
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        def check(case):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            # The token is a real one the test set, not one schemathesis generated; a 503
            # is documented (no worker runs here: /jobs/health says so), a 500 never is.
            excluded = [ignored_auth, not_a_server_error]
            if _refused_beyond_the_document(case.operation.label, response):
                excluded.append(positive_data_acceptance)
            assert response.status_code != 500, response.text
            case.validate_response(response, excluded_checks=excluded)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(
                f"{operation.label}: " + "; ".join(str(e).splitlines()[0] for e in getattr(exc, "exceptions", [exc]))
            )
    return failures


@pytest.fixture
def wsgi_app():
    """The real WSGI handler, keeping the test's database connection open between
    requests (as Django's test client does)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def venues_offline(settings):
    """Every ccxt venue at an address that refuses connections: a documented exchange id
    reaches the exchange layer, which answers 503 at once, never the internet."""
    from accounts.exchanges import known_exchanges

    settings.EXCHANGE_API_URLS = {exchange: "http://127.0.0.1:9" for exchange in known_exchanges()}


@pytest.mark.django_db
def test_every_operation_answers_as_the_document_says(wsgi_app, venues_offline, trader, officer):
    schema = schemathesis.openapi.from_dict(_document())
    schema.app = wsgi_app
    failures = []
    for user in (trader, officer):
        failures += _conformance_failures(schema, access_token_for(user))
    assert not failures, "\n\n".join(failures)
