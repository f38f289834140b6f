"""The two success shapes, so no view builds them by hand.

Phase 4 endpoints return bare objects; ETRMS endpoints return the envelope
``{"status": "success", "message": ..., "data": ...}``.
"""

from rest_framework import status as http
from rest_framework.response import Response


def bare(data, *, status: int = http.HTTP_200_OK, headers: dict | None = None) -> Response:
    """A Phase 4 response: the object as the seed shows it."""
    return Response(data, status=status, headers=headers)


def envelope(data, *, message: str, status: int = http.HTTP_200_OK) -> Response:
    """An ETRMS response: the standard envelope around `data`."""
    return Response({"status": "success", "message": message, "data": data}, status=status)
