"""Phase 4 job endpoints (bare objects, as the seed shows them)."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from accounts.roles import is_risk_officer
from etrms.api.pagination import PageQuery, page, query_validate
from etrms.api.permissions import IsRiskOfficer, ReadAnyWriteRiskOfficer, user_filter
from etrms.api.responses import bare
from jobs import selectors
from jobs.models import Job, JobPriority
from jobs.registry import handler_list
from jobs.scheduling import (
    SCHEDULE_TYPES,
    next_run_of,
    schedule_type_of,
    scheduled_task_delete,
    scheduled_task_register,
    scheduled_task_run_now,
    scheduled_task_set_enabled,
    scheduled_task_spec,
)
from jobs.selectors import scheduled_tasks
from jobs.services import dlq_clear, dlq_retry, job_cancel, job_enqueue


class JobsApi(APIView):
    throttle_scope = "jobs"


class PendingQuery(PageQuery):
    priority = serializers.ChoiceField(choices=JobPriority.choices, required=False)
    default_limit = 100


class DeadLetterQuery(PageQuery):
    default_limit = 100


# --- shapes ---------------------------------------------------------------------------
class JobOutput(serializers.ModelSerializer):
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


class ByPriority(serializers.Serializer):
    critical = serializers.IntegerField()
    high = serializers.IntegerField()
    normal = serializers.IntegerField()
    low = serializers.IntegerField()


class QueueStatsOutput(serializers.Serializer):
    total_pending = serializers.IntegerField()
    pending = ByPriority()
    scheduled = serializers.IntegerField()
    retrying = serializers.IntegerField()
    processing = serializers.IntegerField()
    dead_letter = serializers.IntegerField()
    broker = ByPriority(help_text="Messages waiting in each broker queue.")


WORKER_STATUSES = ["processing", "idle", "offline"]


class WorkerOutput(serializers.Serializer):
    worker_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=WORKER_STATUSES)
    jobs_processed = serializers.IntegerField()
    jobs_succeeded = serializers.IntegerField()
    jobs_failed = serializers.IntegerField()
    success_rate = serializers.FloatField(help_text="percent")
    average_processing_time = serializers.FloatField(help_text="seconds")


class PerWorkerOutput(WorkerOutput):
    alive = serializers.BooleanField()
    processing = serializers.IntegerField()


class WorkerStatsOutput(WorkerOutput):
    workers_alive = serializers.IntegerField()
    per_worker = PerWorkerOutput(many=True)


class SchedulerStatsOutput(serializers.Serializer):
    total_tasks = serializers.IntegerField()
    enabled_tasks = serializers.IntegerField()
    disabled_tasks = serializers.IntegerField()
    due_tasks = serializers.IntegerField()


class StatsOutput(serializers.Serializer):
    running = serializers.BooleanField()
    timestamp = serializers.DateTimeField()
    queue = QueueStatsOutput()
    scheduler = SchedulerStatsOutput()
    workers = WorkerStatsOutput()


class HealthOutput(serializers.Serializer):
    running = serializers.BooleanField()
    timestamp = serializers.DateTimeField()
    scheduler = inline_serializer(
        "HealthScheduler", {"enabled": serializers.BooleanField(), "running": serializers.BooleanField()}
    )
    workers = inline_serializer(
        "HealthWorkers",
        {"mode": serializers.CharField(), "running": serializers.BooleanField(), "count": serializers.IntegerField()},
    )
    queue = inline_serializer(
        "HealthQueue",
        {
            "pending": ByPriority(),
            "scheduled": serializers.IntegerField(),
            "processing": serializers.IntegerField(),
            "dead_letter": serializers.IntegerField(),
        },
    )


class ScheduledTaskOutput(serializers.Serializer):
    name = serializers.CharField()
    job_name = serializers.CharField()
    schedule_type = serializers.ChoiceField(choices=SCHEDULE_TYPES)
    interval_seconds = serializers.IntegerField(allow_null=True)
    cron = serializers.CharField(allow_null=True)
    timezone = serializers.CharField()
    run_at = serializers.DateTimeField(allow_null=True)
    args = serializers.JSONField()
    priority = serializers.CharField()
    enabled = serializers.BooleanField()
    last_run = serializers.DateTimeField(allow_null=True)
    next_run = serializers.DateTimeField(allow_null=True)
    run_count = serializers.IntegerField()


class HandlerOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    default_priority = serializers.CharField()
    officer_only = serializers.BooleanField()
    args = serializers.JSONField(help_text="{argument: {type, required, description}}")


def _with_owner(request, data: dict, job: Job) -> dict:
    if is_risk_officer(request.user):
        data["user_id"] = str(job.user_id) if job.user_id else None
    return data


def _job_list(request, jobs, serializer) -> list[dict]:
    return [_with_owner(request, serializer(job).data, job) for job in jobs]


def scheduled_task_output(task) -> dict:
    spec = scheduled_task_spec(task)
    return {
        "name": task.name,
        "job_name": spec.get("job_name"),
        "schedule_type": schedule_type_of(task),
        "interval_seconds": task.interval.every if task.interval_id else None,
        "cron": (
            f"{task.crontab.minute} {task.crontab.hour} {task.crontab.day_of_month} "
            f"{task.crontab.month_of_year} {task.crontab.day_of_week}"
            if task.crontab_id
            else None
        ),
        "timezone": str(task.crontab.timezone) if task.crontab_id else "UTC",
        "run_at": serializers.DateTimeField().to_representation(task.clocked.clocked_time) if task.clocked_id else None,
        "args": spec.get("args", {}),
        "priority": spec.get("priority"),
        "enabled": task.enabled,
        "last_run": serializers.DateTimeField().to_representation(task.last_run_at) if task.last_run_at else None,
        "next_run": _datetime(next_run_of(task)),
        "run_count": task.total_run_count,
    }


def _datetime(value):
    return serializers.DateTimeField().to_representation(value) if value else None


# --- enqueue and one job -----------------------------------------------------------------
class EnqueueApi(JobsApi):
    class EnqueueInput(serializers.Serializer):
        name = serializers.CharField(max_length=64)
        args = serializers.JSONField(required=False, default=dict)
        priority = serializers.ChoiceField(choices=JobPriority.choices, required=False)
        max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False, default=3)
        timeout = serializers.IntegerField(min_value=1, max_value=3600, required=False, default=300)
        delay_seconds = serializers.FloatField(min_value=0, max_value=30 * 86400, required=False)
        eta = serializers.DateTimeField(required=False)

    @extend_schema(request=EnqueueInput, responses=_job_status("Enqueued"))
    def post(self, request):
        data = self.EnqueueInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = job_enqueue(user=request.user, **data.validated_data)
        return bare({"job_id": str(job.id), "status": "scheduled" if job.run_at else "enqueued"})


class JobDetailApi(JobsApi):
    @extend_schema(responses=JobOutput)
    def get(self, request, job_id):
        job = selectors.job_get(user=request.user, job_id=job_id)
        return bare(_with_owner(request, JobOutput(job).data, job))


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
        return bare({"count": queryset.count(), "jobs": _job_list(request, jobs, PendingJobOutput)})


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


# --- stats and health ---------------------------------------------------------------------
class StatsApi(JobsApi):
    @extend_schema(responses=StatsOutput)
    def get(self, request):
        return bare(selectors.job_stats())


class QueueStatsApi(JobsApi):
    @extend_schema(responses=QueueStatsOutput)
    def get(self, request):
        return bare(selectors.queue_stats())


class WorkerStatsApi(JobsApi):
    @extend_schema(responses=WorkerStatsOutput)
    def get(self, request):
        return bare(selectors.worker_stats())


class SchedulerStatsApi(JobsApi):
    @extend_schema(responses=SchedulerStatsOutput)
    def get(self, request):
        return bare(selectors.scheduler_stats())


class HealthApi(JobsApi):
    """No auth. 200 when a worker and beat are alive; else 503 with the same shape."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: HealthOutput, 503: HealthOutput})
    def get(self, request):
        health = selectors.job_health()
        if health["running"]:
            return bare(health)
        response = bare(health, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response._has_been_logged = True  # an answer, not an error: the request log's line is enough
        return response


# --- scheduled tasks --------------------------------------------------------------------------
class ScheduledListApi(JobsApi):
    permission_classes = [ReadAnyWriteRiskOfficer]

    @extend_schema(responses=inline_serializer("ScheduledTasks", {"tasks": ScheduledTaskOutput(many=True)}))
    def get(self, request):
        return bare({"tasks": [scheduled_task_output(task) for task in scheduled_tasks()]})


class ScheduledRegisterApi(JobsApi):
    permission_classes = [IsRiskOfficer]

    class ScheduledTaskInput(serializers.Serializer):
        name = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,150}$", max_length=150)
        job_name = serializers.CharField(max_length=64)
        schedule_type = serializers.ChoiceField(choices=SCHEDULE_TYPES)
        interval_seconds = serializers.IntegerField(min_value=1, max_value=366 * 86400, required=False)
        cron = serializers.CharField(max_length=100, required=False)
        timezone = serializers.CharField(max_length=63, required=False, default="UTC")
        run_at = serializers.DateTimeField(required=False)
        args = serializers.JSONField(required=False, default=dict)
        priority = serializers.ChoiceField(choices=JobPriority.choices, required=False)
        max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False)
        timeout = serializers.IntegerField(min_value=1, max_value=3600, required=False)
        enabled = serializers.BooleanField(required=False, default=True)

        def validate_timezone(self, value):
            import zoneinfo

            if value not in zoneinfo.available_timezones() and value != "UTC":
                raise serializers.ValidationError(f"Unknown time zone {value!r}.")
            return value

        def validate_run_at(self, value):
            if value <= timezone.now():
                raise serializers.ValidationError("Must be in the future.")
            return value

        def validate(self, attrs):
            from jobs.services.lifecycle import job_args_validate

            attrs["args"] = job_args_validate(name=attrs["job_name"], args=attrs["args"], field="job_name")
            return attrs

    @extend_schema(request=ScheduledTaskInput, responses=ScheduledTaskOutput)
    def post(self, request):
        data = self.ScheduledTaskInput(data=request.data)
        data.is_valid(raise_exception=True)
        definition = dict(data.validated_data)
        definition["tz"] = definition.pop("timezone")
        task = scheduled_task_register(**definition)
        output = scheduled_task_output(task)
        return bare({key: output[key] for key in ("name", "job_name", "schedule_type", "next_run", "enabled")})


class ScheduledItemApi(JobsApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(responses={204: None})
    def delete(self, request, task_name):
        scheduled_task_delete(name=task_name)
        return bare(None, status=status.HTTP_204_NO_CONTENT)


class ScheduledEnableApi(JobsApi):
    permission_classes = [IsRiskOfficer]
    enabled = True

    @extend_schema(request=None, responses=ScheduledTaskOutput)
    def post(self, request, task_name):
        return bare(scheduled_task_output(scheduled_task_set_enabled(name=task_name, enabled=self.enabled)))


class ScheduledDisableApi(ScheduledEnableApi):
    enabled = False


class ScheduledRunApi(JobsApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "ScheduledRun",
            {
                "task_name": serializers.CharField(),
                "job_id": serializers.UUIDField(),
                "status": serializers.CharField(),
            },
        ),
    )
    def post(self, request, task_name):
        job = scheduled_task_run_now(name=task_name)
        return bare({"task_name": task_name, "job_id": str(job.id), "status": "triggered"})


# --- dead-letter queue ------------------------------------------------------------------------
class DeadLetterApi(JobsApi):
    permission_classes = [ReadAnyWriteRiskOfficer]

    @extend_schema(responses=_job_page("DeadLetterJobs", DeadLetterOutput))
    def get(self, request):
        query = query_validate(DeadLetterQuery, request)
        queryset = selectors.jobs_dead_lettered(user=request.user, user_id=user_filter(request, query.get("user_id")))
        jobs = page(queryset, limit=query["limit"], offset=query["offset"])
        return bare({"count": queryset.count(), "jobs": _job_list(request, jobs, DeadLetterOutput)})

    @extend_schema(responses=inline_serializer("Cleared", {"cleared": serializers.IntegerField()}))
    def delete(self, request):
        user_id = user_filter(request, query_validate(DeadLetterQuery, request).get("user_id"))
        return bare({"cleared": dlq_clear(user_id=user_id)})


class DeadLetterRetryApi(JobsApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(request=None, responses=_job_status("Requeued"))
    def post(self, request, job_id):
        job = dlq_retry(job_id=job_id)
        return bare({"job_id": str(job.id), "status": "requeued"})
