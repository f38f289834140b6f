"""Structured logs: every line carries the request id and user id of the request
(or job) it belongs to; access tokens never reach a log line."""

import logging
import re
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
user_id_var: ContextVar[str] = ContextVar("user_id", default="-")

_TOKEN = re.compile(r"((?:token|access|refresh|password|secret|apiKey|api_key)=)[^&\s'\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1[redacted]", text)


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", None) or request_id_var.get()
        record.user_id = getattr(record, "user_id", None) or user_id_var.get()
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class JsonFormatter(_JsonFormatter):
    def add_fields(self, log_record, record, message_dict):
        super().add_fields(log_record, record, message_dict)
        log_record["request_id"] = getattr(record, "request_id", request_id_var.get())
        log_record["user_id"] = getattr(record, "user_id", user_id_var.get())


def logging_config(*, log_format: str, level: str) -> dict:
    """settings.LOGGING: one line per event, `log_format` "json" (production) or "text",
    always with the request id and user id."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "etrms.logging.RequestContextFilter"}},
        "formatters": {
            "json": {
                "()": "etrms.logging.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            },
            "text": {
                "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s user=%(user_id)s] %(message)s",
            },
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.server": {"level": "WARNING"},
            # The request log of etrms.api.request_context replaces Django's own 4xx lines.
            "django.request": {"level": "ERROR"},
            "daphne": {"level": "WARNING"},
            # ccxt logs every request with its API key header at DEBUG: never below WARNING.
            "ccxt": {"level": "WARNING"},
        },
    }
