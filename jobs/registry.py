"""The handler registry: what a job may run.

Each app declares its handlers in its own `handlers.py` module (imported by
`JobsConfig.ready()`):

    @job_handler(
        name="sync_portfolio",
        description="Sync balances and positions of one account from its exchange.",
        args=SyncPortfolioArgs,            # a DRF Serializer validating the job's args
        default_priority="high",
        officer_only=False,                # True: only risk officers may enqueue it
    )
    def sync_portfolio(job, *, exchange, user_id=None) -> dict:
        ...                                # the JSON-serialisable result

A handler receives the `Job` row (for `job.user_id`) and the validated args as keyword
arguments; it raises to fail (the job machinery retries and dead-letters). If the args
serializer has a `user_id` field, a trader's `user_id` must be their own (else 404) and
defaults to them.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from rest_framework import serializers

PRIORITIES = ("critical", "high", "normal", "low")


class NoArgs(serializers.Serializer):
    pass


@dataclass(frozen=True)
class Handler:
    name: str
    description: str
    func: Callable = field(compare=False)
    args: type[serializers.Serializer] = NoArgs
    default_priority: str = "normal"
    officer_only: bool = False

    def args_schema(self) -> dict:
        """A small JSON description of the arguments, for `GET /jobs/handlers`."""
        schema = {}
        for name, serializer_field in self.args().fields.items():
            schema[name] = {
                "type": type(serializer_field).__name__.removesuffix("Field").lower(),
                "required": serializer_field.required,
            }
            if serializer_field.help_text:
                schema[name]["description"] = str(serializer_field.help_text)
        return schema


_registry: dict[str, Handler] = {}


def job_handler(
    *,
    name: str,
    description: str,
    args: type[serializers.Serializer] = NoArgs,
    default_priority: str = "normal",
    officer_only: bool = False,
):
    if default_priority not in PRIORITIES:
        raise ValueError(f"unknown priority {default_priority!r}")

    def register(func: Callable) -> Callable:
        if name in _registry and _registry[name].func is not func:
            raise ValueError(f"job handler {name!r} is registered twice")
        _registry[name] = Handler(
            name=name,
            description=description,
            func=func,
            args=args,
            default_priority=default_priority,
            officer_only=officer_only,
        )
        return func

    return register


def handler_get(name: str) -> Handler | None:
    return _registry.get(name)


def handler_list() -> list[Handler]:
    return sorted(_registry.values(), key=lambda handler: handler.name)
