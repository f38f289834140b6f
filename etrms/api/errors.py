"""The one error shape of SPEC §3, for DRF views and Django's own error handlers.

    {"status": "error", "message": M, "detail": M, "request_id": R, "data": null}
    (+ "errors": {field: [messages]} on validation errors)

Services raise the project's exceptions (`etrms.errors`); views may raise DRF's. This
module maps both, and nothing else builds an error body.
"""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from etrms.errors import ApplicationError, InvalidInput
from etrms.logging import request_id_var
from etrms.outage import OUTAGE_ERRORS, dependency_of, describe

logger = logging.getLogger("etrms.errors")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self):
        super().__init__(f"Request body too large: at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")


# What a 503 for a dependency outage tells the client to wait before trying again.
OUTAGE_RETRY_AFTER_SECONDS = 5


def outage_response(exc: BaseException) -> Response:
    """503 in the error shape for Redis or the database being unavailable.

    No log line here: the request log writes the one line for it, at WARNING, with
    `describe(exc)` (see etrms.api.request_context); Django's own 5xx line is skipped.
    """
    body = error_body(f"Service unavailable: the {dependency_of(exc)} is not answering; try again shortly.")
    response = Response(body, status=503, headers={"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)})
    response.outage = describe(exc)
    response._has_been_logged = True
    return response


def error_body(message: str, *, errors: dict | None = None, data=None) -> dict:
    body = {
        "status": "error",
        "message": message,
        "detail": message,
        "request_id": request_id_var.get(),
        "data": data,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def _flatten(detail) -> dict[str, list[str]]:
    """DRF's nested ValidationError detail -> {"field.sub": ["message", ...]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            for sub_key, messages in _flatten(value).items():
                out[f"{key}.{sub_key}" if sub_key != "non_field_errors" else str(key)] = messages
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {"non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            for sub_key, messages in _flatten(item).items():
                out.setdefault(f"{index}.{sub_key}" if sub_key != "non_field_errors" else str(index), []).extend(
                    messages
                )
        return out
    return {"non_field_errors": [str(detail)]}


def _validation_message(errors: dict[str, list[str]]) -> str:
    parts = [f"{field}: {' '.join(messages)}" for field, messages in errors.items() if field != "non_field_errors"]
    parts = errors.get("non_field_errors", []) + parts
    return "Invalid request parameters: " + "; ".join(parts) if parts else "Invalid request parameters"


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every exception a view raises becomes the error shape."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):  # over DATA_UPLOAD_MAX_MEMORY_SIZE, raised on reading the body
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError("Bad request")
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )

    if isinstance(exc, OUTAGE_ERRORS):
        set_rollback()
        return outage_response(exc)
    if isinstance(exc, ApplicationError):
        set_rollback()
        return application_error_response(exc)
    if not isinstance(exc, exceptions.APIException):
        logger.exception("Unhandled error in %s", context["view"].__class__.__name__)
        set_rollback()
        return Response(error_body("Internal server error"), status=500)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))

    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        body = error_body(_validation_message(errors), errors=errors)
    else:
        detail = exc.detail
        if isinstance(detail, dict) and "detail" in detail:  # simplejwt: {"detail", "code", "messages"}
            detail = detail["detail"]
        if isinstance(detail, (list, dict)):
            errors = _flatten(detail)
            body = error_body(_validation_message(errors), errors=errors)
        else:
            body = error_body(str(detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def application_error_response(exc: ApplicationError) -> Response:
    """A project exception (etrms.errors) in the error shape, with its status code."""
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
    if isinstance(exc, InvalidInput):
        errors = _flatten(exc.errors if exc.errors is not None else [exc.message])
        body = error_body(_validation_message(errors), errors=errors)
    else:
        body = error_body(exc.message)
    return Response(body, status=exc.status_code, headers=headers)


# --- Django's handlers (URLs outside DRF views, and errors Django raises itself) ------
def _wants_html(request) -> bool:
    """Browser pages (admin, dashboard) keep HTML errors; the API always gets JSON."""
    return not request.path.startswith("/api/") and "text/html" in request.headers.get("Accept", "")


def _django_error(message: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(message), status=status_code)


def bad_request(request, exception=None):
    if isinstance(exception, SuspiciousOperation):
        return _django_error("Bad request", 400)
    return _django_error("Invalid request parameters", 400)


def permission_denied(request, exception=None):
    return _django_error("You do not have permission to perform this action.", 403)


def page_not_found(request, exception=None):
    if _wants_html(request):
        return defaults.page_not_found(request, exception)
    return _django_error("Resource not found", 404)


def server_error(request):
    if _wants_html(request):
        return defaults.server_error(request)
    return _django_error("Internal server error", 500)
