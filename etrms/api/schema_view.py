"""`/api/schema/`, apart from etrms.api.schema: that module is DEFAULT_SCHEMA_CLASS, which
drf_spectacular.views reads on import, so it cannot import the view itself."""

import threading

from drf_spectacular.views import SpectacularAPIView


class SchemaApi(SpectacularAPIView):
    """One generation at a time.

    drf-spectacular imports its contrib extensions lazily, on the first generation, and
    that import is not thread-safe: two first requests at once (daphne runs each request
    in its own thread) can see an extension half loaded and answer 500 (AttributeError
    on `target_class`). The schema is the same for everyone, so serialising generation
    costs nothing that matters."""

    _lock = threading.Lock()

    def _get_schema_response(self, request):
        with self._lock:
            return super()._get_schema_response(request)
