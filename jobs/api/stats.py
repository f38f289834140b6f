"""Job, queue, worker and scheduler stats; health (no auth, 503 in the same shape)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny

from etrms.api.responses import bare
from jobs import selectors
from jobs.api.common import JobsApi


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
