"""ETRMS circuit breakers, two views of the same rows (envelope, JSON numbers):

- `/risk/circuit-breakers` (list, add with a flat body), `/{name}` (delete),
  `/{name}/enable` and `/{name}/disable` (PUT);
- `/config/circuit-breakers` (list, add with `{"circuit_breaker": {...}}`), `/{name}`
  (PUT with `{"updates": {...}}`, delete).

Traders read; risk officers write.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError

from etrms.api.inputs import StrictSerializer
from etrms.api.pagination import PageQuery, page, query_validate
from etrms.api.permissions import ReadAnyWriteRiskOfficer
from etrms.api.responses import envelope
from risk.api import breaker_document  # noqa: F401  (documents BreakerFields)
from risk.api.common import ConfigApi, RiskApi
from risk.api.outputs import breaker_out
from risk.selectors import breaker_get, breaker_list
from risk.services.breakers import (
    BreakerFields,
    breaker_create,
    breaker_delete,
    breaker_fields_parse,
    breaker_set_enabled,
    breaker_update,
)

PAGE_PARAMETERS = [OpenApiParameter("limit", int), OpenApiParameter("offset", int)]


def _list(request):
    query = query_validate(PageQuery, request)
    breakers = page(breaker_list(), limit=query["limit"], offset=query["offset"])
    return [breaker_out(breaker) for breaker in breakers]


def _wrapped_fields(request, key: str, *, partial: bool) -> dict:
    """The breaker definition in `{key: {...}}`, as keyword values; errors under `key`."""
    if not hasattr(request.data, "keys") or set(request.data.keys()) != {key}:
        raise ValidationError({key: [f'The body is {{"{key}": {{...}}}}.']})
    fields = BreakerFields(data=request.data[key], partial=partial)
    if not fields.is_valid():
        raise ValidationError({key: fields.errors})
    return fields.validated_data


class RiskBreakerListApi(RiskApi):
    permission_classes = [ReadAnyWriteRiskOfficer]

    @extend_schema(parameters=PAGE_PARAMETERS, description="All circuit breakers, by name.")
    def get(self, request):
        return envelope(_list(request), message="Circuit breakers")

    @extend_schema(
        request=BreakerFields,
        responses={201: OpenApiTypes.OBJECT},
        description="Add a circuit breaker (risk officers).",
    )
    def post(self, request):
        breaker = breaker_create(actor=request.user, **breaker_fields_parse(request.data, partial=False))
        return envelope(
            breaker_out(breaker), message=f"Circuit breaker {breaker.name!r} added", status=status.HTTP_201_CREATED
        )


class RiskBreakerDetailApi(RiskApi):
    permission_classes = [ReadAnyWriteRiskOfficer]

    def delete(self, request, name):
        breaker_delete(actor=request.user, breaker=breaker_get(name=name))
        return envelope(None, message=f"Circuit breaker {name!r} removed")


class RiskBreakerEnableApi(RiskApi):
    permission_classes = [ReadAnyWriteRiskOfficer]
    enabled = True

    @extend_schema(request=None)
    def put(self, request, name):
        breaker = breaker_set_enabled(actor=request.user, breaker=breaker_get(name=name), enabled=self.enabled)
        word = "enabled" if self.enabled else "disabled"
        return envelope(breaker_out(breaker), message=f"Circuit breaker {name!r} {word}")


class RiskBreakerDisableApi(RiskBreakerEnableApi):
    enabled = False


class BreakerBody(StrictSerializer):
    circuit_breaker = BreakerFields()


class BreakerUpdateBody(StrictSerializer):
    updates = BreakerFields(partial=True)


class ConfigBreakerListApi(ConfigApi):
    @extend_schema(parameters=PAGE_PARAMETERS, description="Circuit breaker configurations, by name.")
    def get(self, request):
        return envelope(_list(request), message="Circuit breaker configurations")

    @extend_schema(
        request=BreakerBody,
        responses={201: OpenApiTypes.OBJECT},
        description='Add a circuit breaker: `{"circuit_breaker": {...}}` (risk officers).',
    )
    def post(self, request):
        definition = _wrapped_fields(request, "circuit_breaker", partial=False)
        breaker = breaker_create(actor=request.user, **definition)
        return envelope(
            breaker_out(breaker),
            message=f"Circuit breaker configuration {breaker.name!r} added",
            status=status.HTTP_201_CREATED,
        )


class ConfigBreakerDetailApi(ConfigApi):
    @extend_schema(
        request=BreakerUpdateBody,
        description='Update a circuit breaker: `{"updates": {...}}`, partial (risk officers).',
    )
    def put(self, request, name):
        breaker = breaker_get(name=name)
        changes = _wrapped_fields(request, "updates", partial=True)
        breaker = breaker_update(actor=request.user, breaker=breaker, **changes)
        return envelope(breaker_out(breaker), message=f"Circuit breaker configuration {name!r} updated")

    def delete(self, request, name):
        breaker_delete(actor=request.user, breaker=breaker_get(name=name))
        return envelope(None, message=f"Circuit breaker configuration {name!r} removed")
