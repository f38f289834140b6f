"""OpenAPI generation: the stateless JWT bearer scheme, operation ids from the path,
and plain JSON objects for views that declare no serializer."""

import re

from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.types import OpenApiTypes


class StatelessJWTScheme(SimpleJWTScheme):
    target_class = "rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"


class AutoSchema(openapi.AutoSchema):
    def get_operation_id(self) -> str:
        """`GET /api/v1/config/symbols/{symbol}` -> `v1_config_symbols_by_symbol_get`: unique per route."""
        path = re.sub(r"\{(\w+)\}", r"by_\1", self.path.removeprefix("/api/"))
        tokens = [token for token in re.split(r"[^A-Za-z0-9_]+", path) if token]
        suffix = ["index"] if self.path.endswith("/") and len(tokens) > 1 else []
        return "_".join([*tokens, *suffix, self.method.lower()])

    def _get_serializer(self):
        """An APIView without a serializer documents a JSON object instead of guessing."""
        view = self.view
        if not (hasattr(view, "get_serializer") or hasattr(view, "get_serializer_class")):
            return OpenApiTypes.OBJECT
        return super()._get_serializer()
