"""The project's own exceptions (STYLE §9). Services, selectors and the exchange layer
raise these; nothing below the API knows DRF. The one exception handler
(`etrms.api.errors.exception_handler`) maps each to SPEC §3's error shape with its
`status_code`, the admin turns them into `message_user` lines, and a job that raises
one fails with its message.

`detail` is the message, or for `InvalidInput` the field errors (`{field: [messages]}`,
nested fields allowed: the handler flattens them to `a.b` keys).
"""


class ApplicationError(Exception):
    status_code = 400
    default_message = "The request could not be carried out."

    def __init__(self, message=None, *, retry_after: float | None = None):
        self.message = self.default_message if message is None else str(message)
        self.retry_after = retry_after  # seconds; the handler sends it as Retry-After
        super().__init__(self.message)

    @property
    def detail(self):
        return self.message

    def __str__(self) -> str:
        return self.message


class InvalidInput(ApplicationError):
    """400. `InvalidInput({"field": ["message"]})` or `InvalidInput("message")`."""

    default_message = "Invalid request parameters"

    def __init__(self, detail=None, *, errors: dict | None = None):
        if isinstance(detail, (dict, list)):
            errors, detail = detail, None
        self.errors = errors
        super().__init__(detail)

    @property
    def detail(self):
        return self.errors if self.errors is not None else self.message

    def __str__(self) -> str:
        if self.errors is None:
            return self.message
        return "; ".join(f"{key}: {' '.join(map(str, value))}" for key, value in _flat(self.errors).items())

    def __reduce__(self):
        return (self.__class__, (self.detail,))


class PermissionDenied(ApplicationError):
    status_code = 403
    default_message = "You do not have permission to perform this action."


class NotFound(ApplicationError):
    status_code = 404
    default_message = "Not found."


class Conflict(ApplicationError):
    status_code = 409
    default_message = "The request conflicts with the current state of the resource."


class Unavailable(ApplicationError):
    status_code = 503
    default_message = "A service this request depends on is unavailable."


def _flat(errors, prefix: str = "") -> dict[str, list]:
    if isinstance(errors, dict):
        out: dict[str, list] = {}
        for key, value in errors.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    if isinstance(errors, list) and any(isinstance(item, (dict, list)) for item in errors):
        out = {}
        for index, item in enumerate(errors):
            out.update(_flat(item, f"{prefix}{index}."))
        return out
    return {prefix.rstrip(".") or "non_field_errors": errors if isinstance(errors, list) else [errors]}
