"""OpenAPI generation: the stateless JWT bearer scheme, operation ids from the path,
and plain JSON objects for views that declare no serializer."""

import re

from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.types import OpenApiTypes

from etrms.api.inputs import StrictSerializer


class StatelessJWTScheme(SimpleJWTScheme):
    target_class = "rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"


class AutoSchema(openapi.AutoSchema):
    def get_operation_id(self) -> str:
        """`GET /api/v1/config/symbols/{symbol}` -> `v1_config_symbols_by_symbol_get`: unique per route."""
        path = re.sub(r"\{(\w+)\}", r"by_\1", self.path.removeprefix("/api/"))
        tokens = [token for token in re.split(r"[^A-Za-z0-9_]+", path) if token]
        suffix = ["index"] if self.path.endswith("/") and len(tokens) > 1 else []
        return "_".join([*tokens, *suffix, self.method.lower()])

    def _map_basic_serializer(self, serializer, direction):
        """A strict input serializer says so: unknown keys are a 400."""
        result = super()._map_basic_serializer(serializer, direction)
        if isinstance(serializer, StrictSerializer):
            result["additionalProperties"] = False
        return result

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
    "symbol": r"^[A-Za-z0-9]{2,32}$",
    "exchange": r"^[A-Za-z][A-Za-z0-9]{1,31}$",
    "name": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
    "task_name": r"^[A-Za-z0-9_.:-]{1,150}$",
}
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
                pattern = PATH_PATTERNS.get(parameter["name"])
                if parameter["in"] == "path" and pattern:
                    parameter["schema"] = {**parameter["schema"], "pattern": pattern}
                elif parameter["in"] == "query" and parameter["name"] in QUERY_SCHEMAS:
                    parameter["schema"] = {**parameter["schema"], **QUERY_SCHEMAS[parameter["name"]]}
    return result
