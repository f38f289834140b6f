"""Enqueue, one job (detail, result, cancel), pending jobs, handlers, dead-letter queue."""

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers

from etrms.api.pagination import PageQuery, page, query_validate
from etrms.api.permissions import IsRiskOfficer, ReadAnyWriteRiskOfficer, user_filter
from etrms.api.responses import bare
from jobs import selectors
from jobs.api.common import JobsApi, job_list, with_handler_variants, with_owner
from jobs.models import Job, JobPriority
from jobs.registry import handler_list
from jobs.services import dlq_clear, dlq_retry, job_cancel, job_enqueue, jobs_enqueue


class PendingQuery(PageQuery):
    priority = serializers.ChoiceField(choices=JobPriority.choices, required=False)
    default_limit = 100


class DeadLetterQuery(PageQuery):
    default_limit = 100


class BlankAsNull(serializers.CharField):
    """A text column that stores "" for none, answered as null (as `/result` does)."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, read_only=True, **kwargs)

    def to_representation(self, value):
        return value or None


class JobOutput(serializers.ModelSerializer):
    error = BlankAsNull()
    worker = BlankAsNull()
    scheduled_task = BlankAsNull(help_text="The scheduled task that enqueued it, if any.")

    class Meta:
        model = Job
        fields = [
            "id",
            "name",
            "args",
            "status",
            "priority",
            "created_at",
            "started_at",
            "completed_at",
            "result",
            "error",
            "retry_count",
            "max_retries",
            "timeout",
            "worker",
            "dead_lettered",
            "scheduled_task",
        ]


class PendingJobOutput(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "name", "status", "priority", "created_at"]


class DeadLetterOutput(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "name", "status", "error", "retry_count", "max_retries", "created_at", "completed_at"]


def _job_status(name: str):
    return inline_serializer(name, {"job_id": serializers.UUIDField(), "status": serializers.CharField()})


def _job_page(name: str, item):
    return inline_serializer(name, {"count": serializers.IntegerField(), "jobs": item(many=True)})


class HandlerOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    default_priority = serializers.CharField()
    officer_only = serializers.BooleanField()
    args = serializers.JSONField(help_text="{argument: {type, required, description}}")


# --- enqueue and one job -----------------------------------------------------------------
class EnqueueInput(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    args = serializers.JSONField(required=False, default=dict)
    priority = serializers.ChoiceField(choices=JobPriority.choices, required=False)
    max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False, default=3)
    timeout = serializers.IntegerField(min_value=1, max_value=3600, required=False, default=300)
    delay_seconds = serializers.FloatField(min_value=0, max_value=30 * 86400, required=False)
    eta = serializers.DateTimeField(required=False)

    document_rules = {"not": {"required": ["delay_seconds", "eta"]}}  # one or the other


class EnqueueInputSchema(OpenApiSerializerExtension):
    target_class = EnqueueInput

    def map_serializer(self, auto_schema, direction):
        return with_handler_variants(auto_schema, self.target, direction, name_field="name")


MAX_BULK_JOBS = 1000


class BulkEnqueueInput(serializers.Serializer):
    jobs = EnqueueInput(many=True, min_length=1, max_length=MAX_BULK_JOBS)

    # drf-spectacular does not document a list serializer's length bounds.
    document_rules = {"allOf": [{"properties": {"jobs": {"minItems": 1, "maxItems": MAX_BULK_JOBS}}}]}


def _enqueued(job: Job) -> dict:
    return {"job_id": str(job.id), "status": "scheduled" if job.run_at else "enqueued"}


class EnqueueApi(JobsApi):
    """One job (`{name, args, ...}`) or up to 1,000 (`{"jobs": [{name, args, ...}, ...]}`):
    all or nothing, answered with the ids in the order given."""

    @extend_schema(
        request=PolymorphicProxySerializer(
            "EnqueueRequest", serializers=[EnqueueInput, BulkEnqueueInput], resource_type_field_name=None
        ),
        responses=PolymorphicProxySerializer(
            "EnqueueResponse",
            serializers=[
                _job_status("Enqueued"),
                inline_serializer(
                    "BulkEnqueued",
                    {
                        "jobs": inline_serializer(
                            "EnqueuedItem",
                            {"job_id": serializers.UUIDField(), "status": serializers.CharField()},
                            many=True,
                        )
                    },
                ),
            ],
            resource_type_field_name=None,
        ),
    )
    def post(self, request):
        if isinstance(request.data, dict) and "jobs" in request.data:
            data = BulkEnqueueInput(data=request.data)
            data.is_valid(raise_exception=True)
            jobs = jobs_enqueue(user=request.user, requests=[dict(item) for item in data.validated_data["jobs"]])
            return bare({"jobs": [_enqueued(job) for job in jobs]})
        data = EnqueueInput(data=request.data)
        data.is_valid(raise_exception=True)
        return bare(_enqueued(job_enqueue(user=request.user, **data.validated_data)))


class JobDetailApi(JobsApi):
    @extend_schema(responses=JobOutput)
    def get(self, request, job_id):
        job = selectors.job_get(user=request.user, job_id=job_id)
        return bare(with_owner(request, JobOutput(job).data, job))


class JobResultApi(JobsApi):
    @extend_schema(
        responses=inline_serializer(
            "JobResult",
            {
                "job_id": serializers.UUIDField(),
                "status": serializers.CharField(),
                "result": serializers.JSONField(),
                "error": serializers.CharField(allow_null=True),
            },
        )
    )
    def get(self, request, job_id):
        job = selectors.job_get(user=request.user, job_id=job_id)
        return bare({"job_id": str(job.id), "status": job.status, "result": job.result, "error": job.error or None})


class JobCancelApi(JobsApi):
    @extend_schema(
        request=None,
        responses=inline_serializer(
            "Cancelled", {"job_id": serializers.UUIDField(), "status": serializers.CharField()}
        ),
    )
    def post(self, request, job_id):
        job = job_cancel(job=selectors.job_get(user=request.user, job_id=job_id))
        return bare({"job_id": str(job.id), "status": job.status})


class PendingApi(JobsApi):
    @extend_schema(responses=_job_page("PendingJobs", PendingJobOutput))
    def get(self, request):
        query = query_validate(PendingQuery, request)
        queryset = selectors.jobs_pending(
            user=request.user, priority=query.get("priority"), user_id=user_filter(request, query.get("user_id"))
        )
        jobs = page(
            queryset.only(*PendingJobOutput.Meta.fields, "user_id"), limit=query["limit"], offset=query["offset"]
        )
        return bare({"count": queryset.count(), "jobs": job_list(request, jobs, PendingJobOutput)})


class HandlersApi(JobsApi):
    @extend_schema(responses=inline_serializer("Handlers", {"handlers": HandlerOutput(many=True)}))
    def get(self, request):
        return bare(
            {
                "handlers": [
                    {
                        "name": handler.name,
                        "description": handler.description,
                        "default_priority": handler.default_priority,
                        "officer_only": handler.officer_only,
                        "args": handler.args_schema(),
                    }
                    for handler in handler_list()
                ]
            }
        )


# --- dead-letter queue ------------------------------------------------------------------------
class DeadLetterApi(JobsApi):
    permission_classes = [ReadAnyWriteRiskOfficer]

    @extend_schema(responses=_job_page("DeadLetterJobs", DeadLetterOutput))
    def get(self, request):
        query = query_validate(DeadLetterQuery, request)
        queryset = selectors.jobs_dead_lettered(user=request.user, user_id=user_filter(request, query.get("user_id")))
        jobs = page(queryset, limit=query["limit"], offset=query["offset"])
        return bare({"count": queryset.count(), "jobs": job_list(request, jobs, DeadLetterOutput)})

    @extend_schema(responses={200: inline_serializer("Cleared", {"cleared": serializers.IntegerField()})})
    def delete(self, request):
        user_id = user_filter(request, query_validate(DeadLetterQuery, request).get("user_id"))
        return bare({"cleared": dlq_clear(user_id=user_id)})


class DeadLetterRetryApi(JobsApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(request=None, responses=_job_status("Requeued"))
    def post(self, request, job_id):
        job = dlq_retry(job_id=job_id)
        return bare({"job_id": str(job.id), "status": "requeued"})
