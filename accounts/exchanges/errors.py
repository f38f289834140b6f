"""The exchange layer's errors: what callers see instead of ccxt's exceptions.

Each is a DRF `APIException`, so an API view that lets one escape gets the SPEC §3 error
shape with a meaningful status from the platform's exception handler, and a job that
raises one fails with a clear message (the job machinery retries it).

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

from rest_framework import status
from rest_framework.exceptions import APIException


class ExchangeError(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The exchange returned an error."
    default_code = "exchange_error"

    def __init__(self, detail=None, *, exchange: str | None = None):
        self.exchange = exchange
        if detail is not None and exchange and not str(detail).startswith(exchange):
            detail = f"{exchange}: {detail}"
        super().__init__(detail)

    def __reduce__(self):  # picklable (Celery results, multiprocessing)
        return (self.__class__, (str(self.detail),))


class ExchangeAuthError(ExchangeError):
    default_detail = "The exchange rejected the account's API credentials."
    default_code = "exchange_auth"


class MissingCredentials(ExchangeAuthError):
    default_detail = "The exchange account has no API credentials for this operation."
    default_code = "exchange_credentials_missing"


class ExchangeRateLimited(ExchangeError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "The exchange is rate limiting requests; try again later."
    default_code = "exchange_rate_limited"

    def __init__(self, detail=None, *, exchange: str | None = None, retry_after: float | None = None):
        super().__init__(detail, exchange=exchange)
        self.retry_after = retry_after if retry_after and retry_after > 0 else 1.0
        # The platform's exception handler turns `wait` into a Retry-After header.
        self.wait = self.retry_after

    def __reduce__(self):
        return (_rebuild_rate_limited, (str(self.detail), self.retry_after))


def _rebuild_rate_limited(detail, retry_after):
    return ExchangeRateLimited(detail, retry_after=retry_after)


class ExchangeUnavailable(ExchangeError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The exchange is unavailable."
    default_code = "exchange_unavailable"


class UnknownSymbol(ExchangeError):
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "The exchange does not list this symbol."
    default_code = "unknown_symbol"


class UnknownExchange(ExchangeError):
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "Unknown exchange."
    default_code = "unknown_exchange"


class OrderRejected(ExchangeError):
    default_detail = "The exchange rejected the order."
    default_code = "order_rejected"


class ExchangeNotSupported(ExchangeError):
    status_code = status.HTTP_501_NOT_IMPLEMENTED
    default_detail = "The exchange does not support this operation."
    default_code = "exchange_not_supported"
