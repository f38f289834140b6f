"""What every job endpoint shares: the throttle scope, the owner field officers see, and
the document of a body that names a handler."""

from rest_framework import serializers
from rest_framework.views import APIView

from etrms.api.schema import string_in
from etrms.roles import is_risk_officer
from jobs.models import Job
from jobs.registry import handler_list


class JobsApi(APIView):
    throttle_scope = "jobs"


def with_owner(request, data: dict, job: Job) -> dict:
    if is_risk_officer(request.user):
        data["user_id"] = str(job.user_id) if job.user_id else None
    return data


def job_list(request, jobs, serializer) -> list[dict]:
    return [with_owner(request, serializer(job).data, job) for job in jobs]


def datetime_text(value):
    return serializers.DateTimeField().to_representation(value) if value else None


def with_handler_variants(auto_schema, serializer, direction, *, name_field: str) -> dict:
    """The document of a body naming a handler (`name_field`) with its `args`: one variant
    per registered handler, read when the document is generated (every app has
    registered its own by then), each with that handler's arguments and no others."""
    schema = auto_schema._map_basic_serializer(serializer, direction)
    variants = []
    for handler in handler_list():
        args = {**auto_schema._map_basic_serializer(handler.args(), direction), "additionalProperties": False}
        variant = {"properties": {name_field: string_in(handler.name), "args": args}}
        if args.get("required"):
            variant["required"] = ["args"]
        variants.append(variant)
    return {**schema, "allOf": [*schema.get("allOf", []), {"oneOf": variants}]}
