"""The OpenAPI document of a circuit breaker's definition (`BreakerFields`), as
risk.validators checks it: the threshold's range and the `additional_params` each
condition type (and the reduce_position_size action) accepts, the `symbols` and
`exchanges` scopes. Read when the document is generated (the exchange ids come from the
exchange layer).

One rule is beyond JSON Schema and stated in words: a flat window's start and end differ.
"""

import copy

from drf_spectacular.extensions import OpenApiSerializerExtension

from accounts.fields import exchange_id_schema
from etrms.api.inputs import SYMBOL_PATTERN
from etrms.api.schema import decimal_pattern, string_in, time_zone_schema
from risk.constants import (
    CONDITION_PARAMS,
    MAX_CONSECUTIVE_LOSSES,
    PNL_DIRECTIONS,
    VOLATILITY_WINDOW_RANGE,
    BreakerAction,
    ConditionType,
)
from risk.models import MONEY
from risk.services.breakers import BreakerFields

HHMM = {"type": "string", "pattern": r"^(?:[01]\d|2[0-3]):[0-5]\d$"}
PARAMS = {
    "direction": {"type": "string", **string_in(*PNL_DIRECTIONS)},
    "window_seconds": {
        "type": "integer",
        "minimum": VOLATILITY_WINDOW_RANGE[0],
        "maximum": VOLATILITY_WINDOW_RANGE[1],
    },
    "reduce_pct": {"type": "number", "minimum": 0, "maximum": 100, "exclusiveMinimum": True, "exclusiveMaximum": True},
}
# Whole numbers of closed positions, 1 to MAX_CONSECUTIVE_LOSSES (1000).
CONSECUTIVE_LOSSES = rf"^0*(?:[1-9]\d{{0,{len(str(MAX_CONSECUTIVE_LOSSES)) - 2}}}|{MAX_CONSECUTIVE_LOSSES})(?:\.0*)?$"
BELOW_100 = decimal_pattern(whole=2, places=MONEY["decimal_places"], signed=False, positive=True)


def _flat_windows() -> dict:
    window = {
        "type": "object",
        "properties": {"start": HHMM, "end": HHMM, "tz": time_zone_schema()},
        "required": ["start", "end"],
        "additionalProperties": False,
        "description": "start and end differ.",
    }
    return {"type": "array", "minItems": 1, "items": window}


def _condition(condition_type: str) -> dict:
    """The variant of one condition type: its threshold range and its parameters
    (plus `reduce_pct` when the action reduces the position)."""
    params = {
        name: _flat_windows() if name == "flat_windows" else PARAMS[name]
        for name in sorted(CONDITION_PARAMS[condition_type])
    }

    def params_schema(extra: dict) -> dict:
        return {"type": "object", "nullable": True, "properties": {**params, **extra}, "additionalProperties": False}

    variant = {
        "properties": {"condition_type": string_in(condition_type)},
        "anyOf": [
            {
                "properties": {
                    "action": string_in(BreakerAction.REDUCE_POSITION_SIZE),
                    "additional_params": params_schema({"reduce_pct": PARAMS["reduce_pct"]}),
                },
                "required": ["action"],
            },
            {"properties": {"additional_params": params_schema({})}},
        ],
    }
    if condition_type == ConditionType.CONSECUTIVE_LOSSES:
        variant["properties"]["threshold"] = {"pattern": CONSECUTIVE_LOSSES}
    elif condition_type == ConditionType.TRAILING_STOP:
        variant["properties"]["threshold"] = {"pattern": BELOW_100}
    return variant


def _scope(items: dict) -> dict:
    return {"type": "array", "nullable": True, "minItems": 1, "items": items}


class BreakerFieldsSchema(OpenApiSerializerExtension):
    target_class = BreakerFields

    def get_name(self, auto_schema, direction):
        # A partial definition (PUT `{"updates": {...}}`) is a document of its own.
        return "BreakerUpdates" if getattr(self.target, "partial", False) else None

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["properties"]["symbols"] = _scope({"type": "string", "pattern": SYMBOL_PATTERN})
        schema["properties"]["exchanges"] = _scope(exchange_id_schema())
        if getattr(self.target, "partial", False):
            # Any of the fields; the condition's parameters are checked against the
            # breaker's condition type, which the body may leave out.
            schema.pop("required", None)
            schema["minProperties"] = 1
            return schema
        # Copies: the post-processing hooks rewrite the document in place.
        schema["oneOf"] = copy.deepcopy([_condition(condition_type) for condition_type in ConditionType.values])
        return schema
