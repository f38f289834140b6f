from django.urls import path

from jobs.api import jobs, scheduled, stats

urlpatterns = [
    path("jobs/health", stats.HealthApi.as_view()),
    path("jobs/stats", stats.StatsApi.as_view()),
    path("jobs/handlers", jobs.HandlersApi.as_view()),
    path("jobs/enqueue", jobs.EnqueueApi.as_view()),
    path("jobs/job/<uuid:job_id>", jobs.JobDetailApi.as_view()),
    path("jobs/job/<uuid:job_id>/result", jobs.JobResultApi.as_view()),
    path("jobs/job/<uuid:job_id>/cancel", jobs.JobCancelApi.as_view()),
    path("jobs/pending", jobs.PendingApi.as_view()),
    path("jobs/queue/stats", stats.QueueStatsApi.as_view()),
    path("jobs/workers/stats", stats.WorkerStatsApi.as_view()),
    path("jobs/scheduler/stats", stats.SchedulerStatsApi.as_view()),
    path("jobs/scheduled", scheduled.ScheduledListApi.as_view()),
    path("jobs/scheduled/register", scheduled.ScheduledRegisterApi.as_view()),
    path("jobs/scheduled/<str:task_name>", scheduled.ScheduledItemApi.as_view()),
    path("jobs/scheduled/<str:task_name>/enable", scheduled.ScheduledEnableApi.as_view()),
    path("jobs/scheduled/<str:task_name>/disable", scheduled.ScheduledDisableApi.as_view()),
    path("jobs/scheduled/<str:task_name>/run", scheduled.ScheduledRunApi.as_view()),
    path("jobs/dlq", jobs.DeadLetterApi.as_view()),
    path("jobs/dlq/<uuid:job_id>/retry", jobs.DeadLetterRetryApi.as_view()),
]
