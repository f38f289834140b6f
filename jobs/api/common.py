"""What every job endpoint shares: the throttle scope and the owner field officers see."""

from rest_framework import serializers
from rest_framework.views import APIView

from etrms.roles import is_risk_officer
from jobs.models import Job


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
