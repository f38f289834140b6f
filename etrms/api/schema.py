"""OpenAPI generation: the stateless JWT bearer scheme, operation ids from the path,
plain JSON objects for views that declare no serializer, and input documents as strict
as the API (issue 10 C6): field patterns as DRF parses values, serializers'
`document_rules`, the values apps enumerate for parameters."""

import copy
import re
import zoneinfo
from collections.abc import Callable, Iterable

from django.core.validators import RegexValidator
from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from etrms.api.inputs import SYMBOL_PATTERN, PositiveDecimalField, StrictSerializer


def decimal_pattern(*, whole: int, places: int, signed: bool, positive: bool, ceiling=None) -> str:
    """The decimal strings DRF's DecimalField accepts: up to `whole` digits before the
    point and `places` after, at least one digit; no sign unless `signed`; no zero when
    `positive`; at most `ceiling` when it is a power of ten (1, 100: fractions and
    percentages)."""
    if ceiling is not None and ceiling >= 1 and str(int(ceiling)).rstrip("0") == "1" and ceiling == int(ceiling):
        below = len(str(int(ceiling))) - 1  # digits of the whole numbers under it
        body = rf"0*(?:\d{{0,{below}}}(?:\.\d{{0,{places}}})?|{int(ceiling)}(?:\.0{{0,{places}}})?)"
    elif whole:
        body = rf"(?:\d{{1,{whole}}}(?:\.\d{{0,{places}}})?|\.\d{{1,{places}}})"
    else:
        body = rf"0?\.\d{{1,{places}}}"
    guard = r"(?!0*\.?0*$)" if positive else r"(?=\.?\d)"
    return rf"^{'-?' if signed else ''}{guard}{body}$"


def field_decimal_pattern(field: serializers.DecimalField) -> str:
    positive = isinstance(field, PositiveDecimalField)
    unsigned = positive or (field.min_value is not None and field.min_value >= 0)
    return decimal_pattern(
        whole=field.max_whole_digits,
        places=field.decimal_places,
        signed=not unsigned,
        positive=positive,
        ceiling=field.max_value if unsigned else None,
    )


# What Python's str.strip() (DRF trims with it) removes, and the character DRF refuses
# (NUL; its other refusal, lone surrogates, no regex engine of the validators can name).
# Spelled out: `\s` reads differently in ECMA and Python `re`.
_WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_REFUSED = r"\x00"


def text_pattern(field: serializers.CharField) -> str:
    """What DRF's CharField accepts: no NUL, and (unless blank is allowed) something left
    once trimmed. No lookahead: generators read it plainly."""
    allowed = rf"[^{_REFUSED}]*"
    if field.allow_blank or not field.trim_whitespace:
        return rf"^{allowed}$"
    return rf"^{allowed}[^{_WHITESPACE}{_REFUSED}]{allowed}$"


def time_zone_schema() -> dict:
    """An IANA time zone name (`Europe/London`, `UTC`); the enum inside `allOf`, like
    accounts.fields.exchange_id_schema, so that it stays one inline list."""
    return {"type": "string", "allOf": [{"enum": sorted(zoneinfo.available_timezones() | {"UTC"})}]}


def string_in(*values: str) -> dict:
    """A string rule for `document_rules`: one of `values`. A pattern, not an `enum`: the
    enum post-processing would make each such list a component of its own."""
    return {"pattern": "^(?:" + "|".join(re.escape(value) for value in values) + ")$"}


class StatelessJWTScheme(SimpleJWTScheme):
    target_class = "rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"


class AutoSchema(openapi.AutoSchema):
    def get_operation_id(self) -> str:
        """`GET /api/v1/config/symbols/{symbol}` -> `v1_config_symbols_by_symbol_get`: unique per route."""
        path = re.sub(r"\{(\w+)\}", r"by_\1", self.path.removeprefix("/api/"))
        tokens = [token for token in re.split(r"[^A-Za-z0-9_]+", path) if token]
        suffix = ["index"] if self.path.endswith("/") and len(tokens) > 1 else []
        return "_".join([*tokens, *suffix, self.method.lower()])

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """A decimal's pattern as DRF parses it (drf-spectacular's admits ""), and an input
        text's (no NUL; not blank once trimmed unless blank is allowed)."""
        result = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.DecimalField) and "pattern" in result:
            result["pattern"] = field_decimal_pattern(field)
        elif (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not any(isinstance(validator, RegexValidator) for validator in field.validators)
            and result.get("type") == "string"
            and not {"pattern", "enum", "format"} & set(result)
        ):
            result["pattern"] = text_pattern(field)
        return result

    def _map_basic_serializer(self, serializer, direction):
        """A strict input serializer says so (unknown keys are a 400); a partial one
        requires nothing; `document_rules` join the component."""
        result = super()._map_basic_serializer(serializer, direction)
        if serializer.partial and direction == "request":  # any subset of the fields
            result.pop("required", None)
        if isinstance(serializer, StrictSerializer):
            result["additionalProperties"] = False
        # A copy: the post-processing hooks rewrite the document in place.
        result.update(copy.deepcopy(getattr(serializer, "document_rules", {})))
        return result

    def _get_request_for_media_type(self, serializer, direction="request"):
        """A body is required when its document requires a field: through one of several
        shapes (drf-spectacular's polymorphic proxy), or through `document_rules` whose
        every alternative requires one (`{symbols} or {keys}`)."""
        schema, required = super()._get_request_for_media_type(serializer, direction)
        alternatives = getattr(serializer, "document_rules", {}).get("anyOf", [])
        rules_require = bool(alternatives) and all(branch.get("required") for branch in alternatives)
        return schema, required or rules_require or isinstance(serializer, PolymorphicProxySerializer)

    def _get_serializer(self):
        """An APIView without a serializer documents a JSON object instead of guessing."""
        view = self.view
        if not (hasattr(view, "get_serializer") or hasattr(view, "get_serializer_class")):
            return OpenApiTypes.OBJECT
        return super()._get_serializer()


# --- what every operation may answer (SPEC §3) ------------------------------------------
ERROR_SCHEMA = {
    "type": "object",
    "description": "SPEC §3's one error shape; `errors` (field -> messages) on validation errors.",
    "properties": {
        "status": {"type": "string", "enum": ["error"]},
        "message": {"type": "string"},
        "detail": {"type": "string"},
        "request_id": {"type": "string", "nullable": True},
        "data": {"nullable": True},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["status", "message", "detail", "request_id", "data"],
}
ERROR_RESPONSES = {
    "400": "Bad input (unknown keys, bad values, unknown enum values).",
    "401": "No token, or a bad or expired one.",
    "403": "The caller's role may not do this.",
    "404": "Unknown, or not the caller's.",
    "409": "Conflict: a duplicate name or an illegal state change.",
    "413": "The request body is over the size limit.",
    "429": "Rate limited; `Retry-After` says when to try again.",
    "503": "A dependency (Redis, the database, an exchange) is down; `Retry-After` when known.",
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
# Path segments the API accepts (etrms.api and risk.validators normalize them).
PATH_PATTERNS = {
    "symbol": SYMBOL_PATTERN,
    "exchange": r"^[A-Za-z][A-Za-z0-9]{1,31}$",
    "name": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
    "task_name": r"^[A-Za-z0-9_.:-]{1,150}$",
}
# Parameters whose values an app enumerates, by name (path and query alike): filled in by
# the apps (`parameter_values_register`), read when the document is generated.
PARAMETER_VALUES: dict[str, Callable[[], Iterable[str]]] = {}


def parameter_values_register(name: str, values: Callable[[], Iterable[str]]) -> None:
    PARAMETER_VALUES[name] = values


# The list rules of every list (SPEC §3; etrms.api.pagination).
QUERY_SCHEMAS = {
    "limit": {"type": "integer", "minimum": 1},
    "offset": {"type": "integer", "minimum": 0},
    "user_id": {"type": "string", "format": "uuid"},
    "symbol": {"type": "string", "pattern": PATH_PATTERNS["symbol"]},
}


def error_responses_hook(result, generator, request, public):
    """drf-spectacular postprocessing hook: the error shape as a component, every error
    status of SPEC §3 on every operation (an operation's own description of a status,
    such as a health endpoint's 503 in its seed shape, wins), and the path patterns."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_RESPONSES.items():
                response = responses.setdefault(
                    code, {"description": description, "content": {"application/json": {"schema": ref}}}
                )
                if code in ("429", "503"):
                    response.setdefault("headers", RETRY_AFTER)
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _parameter_schema(parameter["name"], parameter["in"], parameter["schema"])
    return result


def _parameter_schema(name: str, where: str, schema: dict) -> dict:
    """A parameter's schema with the values the API accepts; a list parameter (`symbols`)
    gets its items' (`symbol`)."""
    if schema.get("type") == "array":
        return {**schema, "items": _parameter_schema(name.removesuffix("s"), where, schema.get("items", {}))}
    if name in PARAMETER_VALUES and schema.get("type") == "string":
        schema = {**schema, "enum": list(PARAMETER_VALUES[name]())}
    if where == "path" and name in PATH_PATTERNS:
        return {**schema, "pattern": PATH_PATTERNS[name]}
    if where == "query" and name in QUERY_SCHEMAS:
        return {**schema, **QUERY_SCHEMAS[name]}
    return schema
