"""Phase 4 risk limits: `/risk/limits` (list, create) and `/risk/limits/{id}` (get,
put, patch, delete). Bare objects, decimal strings."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status

from etrms.api.inputs import PositiveDecimalField, StrictSerializer, SymbolField
from etrms.api.pagination import PageQuery, page_count, query_filter_values, query_validate
from etrms.api.permissions import user_filter
from etrms.api.responses import bare
from etrms.api.schema import decimal_pattern, string_in
from etrms.compiled_queries import compiled_page
from etrms.roles import is_risk_officer
from risk.api.common import RiskApi
from risk.api.limit_changes import pending_out  # issue 15: four eyes
from risk.api.limits_output import LIMIT_ROW_COLUMNS, LIMIT_ROW_TEXT, laddered_limit_ids, limit_item_out, limits_out
from risk.api.outputs import as_text
from risk.constants import MAX_LADDER_STEPS, SYMBOL_LIMIT_TYPES, THRESHOLD_CEILINGS, LadderAction, LimitType
from risk.filters import LimitFilter
from risk.models import MONEY, LimitChange
from risk.selectors import ladder_latches_get, limit_get, limit_list
from risk.services.limit_changes import limit_delete_or_request, limit_update_or_request
from risk.services.limits import limit_create
from risk.validators import LADDER_PCT_STEP, MAX_LADDER_PCT, ladder_normalize


class StrictBooleanField(serializers.BooleanField):
    """true/false only (and JSON booleans): `"maybe"` or `"2"` is a 400."""

    TRUE_VALUES = {True, "true", "True", "TRUE", "1"}
    FALSE_VALUES = {False, "false", "False", "FALSE", "0"}


def _at_most(ceiling: Decimal) -> str:
    places = MONEY["decimal_places"]
    return decimal_pattern(
        whole=MONEY["max_digits"] - places, places=places, signed=False, positive=True, ceiling=ceiling
    )


@extend_schema_field(
    {
        "type": "array",
        "nullable": True,
        "minItems": 1,
        "maxItems": MAX_LADDER_STEPS,
        "description": "Graded ladder (issue 15): null, or steps with at_pct strictly increasing.",
        "items": {
            "type": "object",
            "required": ["at_pct", "do"],
            "additionalProperties": False,
            "properties": {
                # A whole percent, or a decimal string with up to 4 decimals (a JSON
                # fraction is accepted too, when its text has 4 decimals at most: a binary
                # float's often has more, so the document offers the exact forms).
                "at_pct": {
                    "anyOf": [
                        {"type": "integer", "minimum": 1, "maximum": int(MAX_LADDER_PCT)},
                        {
                            "type": "string",
                            "pattern": decimal_pattern(
                                whole=len(str(int(MAX_LADDER_PCT))),
                                places=-LADDER_PCT_STEP.as_tuple().exponent,
                                signed=False,
                                positive=True,
                                ceiling=MAX_LADDER_PCT,
                            ),
                        },
                    ]
                },
                "do": {"type": "string", "enum": LadderAction.values},
            },
        },
    }
)
class LadderField(serializers.JSONField):
    """Parsed as JSON, checked by `ladder_normalize` (every problem named, SPEC §3)."""


class LimitInput(StrictSerializer):
    symbol = SymbolField(max_length=32, required=False, allow_null=True, allow_blank=True)
    limit_type = serializers.ChoiceField(choices=LimitType.choices)
    threshold_value = PositiveDecimalField(**MONEY)
    warning_value = PositiveDecimalField(**MONEY, required=False, allow_null=True)
    enabled = StrictBooleanField(required=False, default=True)
    ladder = LadderField(required=False, allow_null=True)

    def validate_ladder(self, value):
        return ladder_normalize(value, field=None)

    # RiskLimit.clean(): only a position_size limit takes a symbol; fractions and
    # percentages have a ceiling. (warning_value < threshold_value is checked too; JSON
    # Schema cannot compare two fields: the description says it.)
    document_rules = {
        "allOf": [
            {
                "anyOf": [
                    {"properties": {"limit_type": string_in(*sorted(SYMBOL_LIMIT_TYPES))}, "required": ["limit_type"]},
                    {"not": {"required": ["symbol"]}},
                ]
            },
            *(
                {
                    "anyOf": [
                        {"properties": {"limit_type": {"not": string_in(limit_type)}}},
                        {
                            "properties": {
                                "threshold_value": {"pattern": _at_most(ceiling)},
                                "warning_value": {"pattern": _at_most(ceiling)},
                            }
                        },
                    ]
                }
                for limit_type, ceiling in sorted(THRESHOLD_CEILINGS.items())
            ),
        ]
    }


class LimitCreateInput(LimitInput):
    user_id = serializers.UUIDField(required=False, allow_null=True)


@dataclass(frozen=True)
class _Viewer:
    """What `visible_to` reads of the caller: its id and role."""

    pk: uuid.UUID
    is_risk_officer: bool
    is_authenticated: bool = True


def _limit_rows(values: dict):
    """The list's rows (`LIMIT_ROW`) for `values`: the caller (`viewer_id`,
    `officer`), `user_id` (None: all it sees) and LimitFilter's validated parameters.
    Compiled once per shape (`etrms.compiled_queries`); the caller's values fill it."""
    filters = {name: values[name] for name in LimitFilter.base_filters if name in values}
    viewer = _Viewer(pk=values["viewer_id"], is_risk_officer=values["officer"])
    queryset = limit_list(viewer=viewer, user_id=values["user_id"], filters=filters)
    return as_text(queryset, *LIMIT_ROW_TEXT).values_list(*LIMIT_ROW_COLUMNS)


class LimitListCreateApi(RiskApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("symbol", str),
            OpenApiParameter("limit_type", str, enum=LimitType.values),
            OpenApiParameter("enabled", bool),
            OpenApiParameter("user_id", str, description="Risk officers: one user's limits."),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
        description="The caller's risk limits (a risk officer: everyone's, with `user_id`), newest first.",
    )
    def get(self, request):
        query = query_validate(PageQuery, request)
        officer = is_risk_officer(request.user)
        values = {
            "viewer_id": uuid.UUID(str(request.user.pk)),
            "officer": officer,
            "user_id": user_filter(request, query.get("user_id")),
            **query_filter_values(LimitFilter, request),
        }
        limit, offset = query["limit"], query["offset"]
        rows = compiled_page("risk.limits", _limit_rows, values, limit=limit, offset=offset)
        latches = ladder_latches_get(limit_ids=laddered_limit_ids(rows))
        return bare(
            {
                "limits": limits_out(rows, with_user=officer, latches=latches),
                "count": page_count(lambda: _limit_rows(values).count(), rows, limit=limit, offset=offset),
            }
        )

    @extend_schema(
        request=LimitCreateInput,
        responses={201: OpenApiTypes.OBJECT},
        description="Create a risk limit (risk officers: for any `user_id`). warning_value is below threshold_value.",
    )
    def post(self, request):
        data = LimitCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        limit = limit_create(actor=request.user, **data.validated_data)
        return bare(limit_item_out(limit, with_user=True, latches={}), status=status.HTTP_201_CREATED)


# Four eyes (issue 15): a loosening by an officer answers 202 with the pending change.
HELD_OR_DONE = {200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT}


class LimitDetailApi(RiskApi):
    def _item(self, request, limit):
        if isinstance(limit, LimitChange):  # four eyes held a loosening back
            return bare(pending_out(limit), status=status.HTTP_202_ACCEPTED)
        latches = ladder_latches_get(limit_ids=[limit.pk])
        return bare(limit_item_out(limit, with_user=is_risk_officer(request.user), latches=latches))

    def get(self, request, limit_id):
        return self._item(request, limit_get(viewer=request.user, limit_id=limit_id))

    @extend_schema(
        request=LimitInput,
        responses=HELD_OR_DONE,
        description="Replace a limit (omitted optional fields take their defaults).",
    )
    def put(self, request, limit_id):
        limit = limit_get(viewer=request.user, limit_id=limit_id)
        data = LimitInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes = {"symbol": None, "warning_value": None, "enabled": True, "ladder": [], **data.validated_data}
        return self._item(request, limit_update_or_request(actor=request.user, limit=limit, changes=changes))

    @extend_schema(
        request=LimitInput(partial=True), responses=HELD_OR_DONE, description="Change some fields of a limit."
    )
    def patch(self, request, limit_id):
        limit = limit_get(viewer=request.user, limit_id=limit_id)
        data = LimitInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "enabled" not in request.data:
            changes.pop("enabled", None)  # the field's default must not apply to a PATCH
        return self._item(request, limit_update_or_request(actor=request.user, limit=limit, changes=changes))

    @extend_schema(responses={204: None, 202: OpenApiTypes.OBJECT})
    def delete(self, request, limit_id):
        held = limit_delete_or_request(actor=request.user, limit=limit_get(viewer=request.user, limit_id=limit_id))
        if held is not None:
            return bare(pending_out(held), status=status.HTTP_202_ACCEPTED)
        return bare(None, status=status.HTTP_204_NO_CONTENT)
