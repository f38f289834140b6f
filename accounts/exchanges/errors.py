"""The exchange layer's errors: what callers see instead of ccxt's exceptions.

Each is a project exception (`etrms.errors.ApplicationError`) with its own status code, so
an API view that lets one escape gets the SPEC §3 error shape with a meaningful status
from the platform's exception handler, and a job that raises one fails with a clear
message (the job machinery retries it).

| error                    | status | when                                                      |
| ------------------------ | ------ | --------------------------------------------------------- |
| UnknownSymbol            | 404    | the venue does not list the symbol (from loaded markets)  |
| UnknownExchange          | 404    | not a ccxt exchange id and not `paper`                    |
| ExchangeRateLimited      | 429    | the venue throttled us; `Retry-After` from its answer     |
| ExchangeUnavailable      | 503    | network error, timeout, 5xx, maintenance                  |
| ExchangeAuthError        | 502    | the venue refused the account's stored credentials        |
| MissingCredentials       | 502    | the account has none and the call needs them              |
| OrderRejected            | 502    | the venue refused an order (size, funds, reduce-only)     |
| ExchangeNotSupported     | 501    | the venue has no such operation                           |
| ExchangeError            | 502    | anything else the venue answered with                     |

502 for credential problems: the caller's own request and token are fine (so not 400 or
401); the upstream refused ETRMS, which the officer fixes in the account.
"""

from etrms.errors import ApplicationError


class ExchangeError(ApplicationError):
    status_code = 502
    default_message = "The exchange returned an error."

    def __init__(self, detail=None, *, exchange: str | None = None, retry_after: float | None = None):
        self.exchange = exchange
        if detail is not None and exchange and not str(detail).startswith(exchange):
            detail = f"{exchange}: {detail}"
        super().__init__(detail, retry_after=retry_after)

    def __reduce__(self):  # picklable (Celery results, multiprocessing)
        return (self.__class__, (str(self.detail),))


class ExchangeAuthError(ExchangeError):
    default_message = "The exchange rejected the account's API credentials."


class MissingCredentials(ExchangeAuthError):
    default_message = "The exchange account has no API credentials for this operation."


class ExchangeRateLimited(ExchangeError):
    status_code = 429
    default_message = "The exchange is rate limiting requests; try again later."

    def __init__(self, detail=None, *, exchange: str | None = None, retry_after: float | None = None):
        # The platform's exception handler turns `retry_after` into a Retry-After header.
        super().__init__(detail, exchange=exchange, retry_after=retry_after if retry_after and retry_after > 0 else 1.0)

    def __reduce__(self):
        return (_rebuild_rate_limited, (str(self.detail), self.retry_after))


def _rebuild_rate_limited(detail, retry_after):
    return ExchangeRateLimited(detail, retry_after=retry_after)


class ExchangeUnavailable(ExchangeError):
    status_code = 503
    default_message = "The exchange is unavailable."


class UnknownSymbol(ExchangeError):
    status_code = 404
    default_message = "The exchange does not list this symbol."


class UnknownExchange(ExchangeError):
    status_code = 404
    default_message = "Unknown exchange."


class OrderRejected(ExchangeError):
    default_message = "The exchange rejected the order."


class ExchangeNotSupported(ExchangeError):
    status_code = 501
    default_message = "The exchange does not support this operation."
