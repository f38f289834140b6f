"""Job endpoints: shapes of the seed, validation, roles and ownership. No worker here:
jobs stay pending (publishing happens on commit, and these tests never commit)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobStatus
from jobs.scheduling import scheduled_task_upsert

pytestmark = pytest.mark.django_db


def enqueue(client, **body):
    return client.post("/api/v1/jobs/enqueue", body, format="json")


def make_job(user, **fields):
    defaults = {"name": "ping", "args": {}, "priority": "normal", "user_id": user.pk if user else None}
    return Job.objects.create(**(defaults | fields))


# --- enqueue ------------------------------------------------------------------------------
def test_enqueue_returns_the_seed_shape_and_writes_the_row(trader_client, trader):
    response = enqueue(trader_client, name="ping", priority="high", max_retries=2, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"job_id", "status"}
    assert body["status"] == "enqueued"
    job = Job.objects.get(pk=body["job_id"])
    assert (job.name, job.priority, job.max_retries, job.timeout, job.status) == ("ping", "high", 2, 30, "pending")
    assert job.user_id == trader.pk


def test_enqueue_defaults_priority_from_the_handler(officer_client):
    job_id = enqueue(officer_client, name="sleep", args={"seconds": 0}).json()["job_id"]
    assert Job.objects.get(pk=job_id).priority == "low"


def test_unknown_handler_lists_the_known_ones(trader_client):
    response = enqueue(trader_client, name="nope")
    assert response.status_code == 400
    message = response.json()["errors"]["name"][0]
    assert "nope" in message
    assert "ping" in message
    assert "cleanup" in message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "ping", "priority": "urgent"}, "priority"),
        ({"name": "ping", "max_retries": 11}, "max_retries"),
        ({"name": "ping", "max_retries": -1}, "max_retries"),
        ({"name": "ping", "timeout": 0}, "timeout"),
        ({"name": "ping", "timeout": 3601}, "timeout"),
        ({"name": "ping", "delay_seconds": -5}, "delay_seconds"),
        ({"name": "ping", "eta": "not a date"}, "eta"),
        ({"name": "ping", "args": {"unexpected": 1}}, "args.unexpected"),
        ({"name": "sleep", "args": {"seconds": 61}}, "args.seconds"),
        ({"name": "sleep", "args": {}}, "args.seconds"),
        ({"name": "fail", "args": {"error": "x", "times": 0}}, "args.times"),
        ({"name": "ping", "args": [1, 2]}, "args"),
        ({}, "name"),
    ],
)
def test_enqueue_validation(officer_client, body, field):
    response = enqueue(officer_client, **body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert Job.objects.count() == 0


def test_delay_and_eta_schedule_the_job(trader_client):
    delayed = enqueue(trader_client, name="ping", delay_seconds=60).json()
    assert delayed["status"] == "scheduled"
    job = Job.objects.get(pk=delayed["job_id"])
    assert job.status == JobStatus.SCHEDULED
    assert job.run_at > timezone.now() + timedelta(seconds=50)

    eta = (timezone.now() + timedelta(hours=1)).isoformat()
    at = Job.objects.get(pk=enqueue(trader_client, name="ping", eta=eta).json()["job_id"])
    assert at.status == JobStatus.SCHEDULED
    assert enqueue(trader_client, name="ping", eta=eta, delay_seconds=5).status_code == 400


@pytest.mark.parametrize("name", ["sleep", "fail", "cleanup"])
def test_officer_only_handlers_are_403_for_traders(trader_client, name):
    args = {"sleep": {"seconds": 1}, "fail": {"error": "x"}, "cleanup": {}}[name]
    assert enqueue(trader_client, name=name, args=args).status_code == 403


def test_critical_priority_is_403_for_traders(trader_client, officer_client):
    assert enqueue(trader_client, name="ping", priority="critical").status_code == 403
    assert enqueue(officer_client, name="ping", priority="critical").status_code == 200


def test_enqueue_requires_auth(anon_client):
    assert enqueue(anon_client, name="ping").status_code == 401


# --- one job ---------------------------------------------------------------------------------
def test_job_detail_and_result_shapes(trader_client, trader):
    job = make_job(
        trader, status="completed", result={"pong": True}, started_at=timezone.now(), completed_at=timezone.now()
    )
    detail = trader_client.get(f"/api/v1/jobs/job/{job.pk}").json()
    seed_keys = {
        "id", "name", "args", "status", "priority", "created_at", "started_at", "completed_at",
        "result", "retry_count", "max_retries",
    }  # fmt: skip
    assert seed_keys <= set(detail)
    assert "user_id" not in detail
    assert detail["created_at"].endswith("Z")
    result = trader_client.get(f"/api/v1/jobs/job/{job.pk}/result").json()
    assert result == {"job_id": str(job.pk), "status": "completed", "result": {"pong": True}, "error": None}


def test_another_users_job_is_404_and_an_officer_sees_it(api_client_for, trader, make_user, officer_client):
    job = make_job(trader)
    stranger = api_client_for(make_user())
    for suffix in ("", "/result"):
        assert stranger.get(f"/api/v1/jobs/job/{job.pk}{suffix}").status_code == 404
    assert stranger.post(f"/api/v1/jobs/job/{job.pk}/cancel").status_code == 404
    seen = officer_client.get(f"/api/v1/jobs/job/{job.pk}").json()
    assert seen["user_id"] == str(trader.pk)


def test_unknown_job_is_404(trader_client):
    assert trader_client.get(f"/api/v1/jobs/job/{uuid.uuid4()}").status_code == 404
    assert trader_client.get("/api/v1/jobs/job/not-a-uuid").status_code == 404


@pytest.mark.parametrize("status", ["pending", "scheduled", "retrying"])
def test_cancel_not_started(trader_client, trader, status):
    job = make_job(trader, status=status)
    response = trader_client.post(f"/api/v1/jobs/job/{job.pk}/cancel")
    assert response.status_code == 200
    assert response.json() == {"job_id": str(job.pk), "status": "cancelled"}
    job.refresh_from_db()
    assert job.status == "cancelled"


@pytest.mark.parametrize("status", ["processing", "completed", "failed", "cancelled"])
def test_cancel_started_is_409(trader_client, trader, status):
    job = make_job(trader, status=status)
    response = trader_client.post(f"/api/v1/jobs/job/{job.pk}/cancel")
    assert response.status_code == 409
    job.refresh_from_db()
    assert job.status == status


# --- lists ---------------------------------------------------------------------------------------
def test_pending_lists_own_jobs_newest_first_with_filters(trader_client, trader, make_user):
    other = make_user()
    old = make_job(trader, priority="low")
    new = make_job(trader, priority="high", status="scheduled")
    make_job(trader, status="completed")
    make_job(other)
    body = trader_client.get("/api/v1/jobs/pending").json()
    assert body["count"] == 2
    assert [job["id"] for job in body["jobs"]] == [str(new.pk), str(old.pk)]
    assert set(body["jobs"][0]) == {"id", "name", "status", "priority", "created_at"}
    high = trader_client.get("/api/v1/jobs/pending?priority=high").json()
    assert [job["id"] for job in high["jobs"]] == [str(new.pk)]
    page = trader_client.get("/api/v1/jobs/pending?limit=1&offset=1").json()
    assert page["count"] == 2
    assert [job["id"] for job in page["jobs"]] == [str(old.pk)]


def test_pending_priority_filter_refuses_an_unknown_priority_or_one_given_twice(trader_client):
    unknown = trader_client.get("/api/v1/jobs/pending?priority=urgent")
    assert unknown.status_code == 400
    assert "priority" in unknown.json()["errors"]
    twice = trader_client.get("/api/v1/jobs/pending?priority=high&priority=low")
    assert twice.status_code == 400
    assert "priority" in twice.json()["errors"]


def test_officer_sees_all_pending_with_user_id_and_filter(officer_client, trader, make_user):
    make_job(trader)
    make_job(make_user())
    body = officer_client.get("/api/v1/jobs/pending").json()
    assert body["count"] == 2
    assert all("user_id" in job for job in body["jobs"])
    mine = officer_client.get(f"/api/v1/jobs/pending?user_id={trader.pk}").json()
    assert mine["count"] == 1
    assert mine["jobs"][0]["user_id"] == str(trader.pk)


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=abc", "offset=-1", "priority=urgent"])
def test_list_query_validation(trader_client, query):
    assert trader_client.get(f"/api/v1/jobs/pending?{query}").status_code == 400


def test_limit_is_capped_at_1000(trader_client, trader):
    make_job(trader)
    assert trader_client.get("/api/v1/jobs/pending?limit=5000").status_code == 200


@pytest.mark.parametrize("url", ["/api/v1/jobs/pending", "/api/v1/jobs/dlq"])
def test_an_offset_past_any_database_integer_is_an_empty_page(trader_client, trader, url):
    """Found by schemathesis: the database refused such an OFFSET and the list answered 500."""
    make_job(trader)
    response = trader_client.get(f"{url}?offset={10**26}")
    assert response.status_code == 200, response.content
    assert response.json()["jobs"] == []


def test_pending_list_query_count_is_pinned(trader_client, trader, django_assert_max_num_queries):
    for _ in range(30):
        make_job(trader)
    with django_assert_max_num_queries(2):
        assert trader_client.get("/api/v1/jobs/pending").json()["count"] == 30


def test_handlers_are_listed_with_their_schema(trader_client):
    handlers = {h["name"]: h for h in trader_client.get("/api/v1/jobs/handlers").json()["handlers"]}
    assert {"ping", "sleep", "fail", "cleanup"} <= set(handlers)
    assert handlers["sleep"]["args"]["seconds"]["required"] is True
    assert handlers["sleep"]["officer_only"] is True
    assert handlers["ping"]["officer_only"] is False


# --- dead-letter queue ----------------------------------------------------------------------------
def test_dlq_list_retry_and_clear(officer_client, trader_client, trader):
    dead = make_job(
        trader,
        status="failed",
        dead_lettered=True,
        error="Connection timeout",
        retry_count=3,
        completed_at=timezone.now(),
    )
    make_job(trader, status="failed", dead_lettered=False)
    body = trader_client.get("/api/v1/jobs/dlq").json()
    assert body["count"] == 1
    item = body["jobs"][0]
    assert set(item) == {"id", "name", "status", "error", "retry_count", "max_retries", "created_at", "completed_at"}
    assert item["error"] == "Connection timeout"

    assert trader_client.post(f"/api/v1/jobs/dlq/{dead.pk}/retry").status_code == 403
    assert trader_client.delete("/api/v1/jobs/dlq").status_code == 403

    response = officer_client.post(f"/api/v1/jobs/dlq/{dead.pk}/retry")
    assert response.json() == {"job_id": str(dead.pk), "status": "requeued"}
    dead.refresh_from_db()
    assert (dead.status, dead.retry_count, dead.dead_lettered, dead.attempt) == ("pending", 0, False, 2)
    assert officer_client.post(f"/api/v1/jobs/dlq/{dead.pk}/retry").status_code == 404

    make_job(trader, status="failed", dead_lettered=True)
    make_job(trader, status="failed", dead_lettered=True)
    assert officer_client.delete("/api/v1/jobs/dlq").json() == {"cleared": 2}
    assert officer_client.get("/api/v1/jobs/dlq").json()["count"] == 0


# --- stats --------------------------------------------------------------------------------------------
def test_queue_stats_count_from_the_database(trader_client, trader):
    make_job(trader, priority="high")
    make_job(trader, priority="low")
    make_job(trader, priority="low")
    make_job(trader, status="scheduled")
    make_job(trader, status="processing")
    make_job(trader, status="failed", dead_lettered=True)
    queue = trader_client.get("/api/v1/jobs/queue/stats").json()
    assert queue["pending"] == {"critical": 0, "high": 1, "normal": 0, "low": 2}
    assert queue["total_pending"] == 3
    assert (queue["scheduled"], queue["processing"], queue["dead_letter"]) == (1, 1, 1)
    assert set(queue["broker"]) == {"critical", "high", "normal", "low"}

    stats = trader_client.get("/api/v1/jobs/stats").json()
    assert set(stats) == {"running", "timestamp", "queue", "scheduler", "workers"}
    assert stats["queue"]["pending"] == queue["pending"]
    assert set(stats["scheduler"]) == {"total_tasks", "enabled_tasks", "disabled_tasks", "due_tasks"}
    workers = trader_client.get("/api/v1/jobs/workers/stats").json()
    seed_worker_keys = {"worker_id", "status", "jobs_processed", "jobs_succeeded", "jobs_failed", "success_rate"}
    assert seed_worker_keys | {"average_processing_time", "per_worker"} <= set(workers)


def test_scheduler_stats(trader_client):
    scheduled_task_upsert(name="a", job_name="ping", interval_seconds=60)
    scheduled_task_upsert(name="b", job_name="ping", interval_seconds=60, enabled=False)
    assert trader_client.get("/api/v1/jobs/scheduler/stats").json() == {
        "total_tasks": 2,
        "enabled_tasks": 1,
        "disabled_tasks": 1,
        "due_tasks": 0,
    }


def test_health_is_public_and_503_without_workers(anon_client):
    from etrms.redis_client import platform_redis

    for key in platform_redis().scan_iter(match="jobs:worker:*"):
        platform_redis().delete(key)
    response = anon_client.get("/api/v1/jobs/health")
    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"running", "timestamp", "scheduler", "workers", "queue"}
    assert body["running"] is False
    assert body["workers"]["running"] is False


def test_stats_require_auth(anon_client):
    assert anon_client.get("/api/v1/jobs/stats").status_code == 401


# --- scheduled tasks -------------------------------------------------------------------------------------
def register(client, **body):
    return client.post("/api/v1/jobs/scheduled/register", body, format="json")


def test_register_interval_crontab_and_one_off(officer_client):
    response = register(officer_client, name="sync5", job_name="ping", schedule_type="interval", interval_seconds=300)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"name", "job_name", "schedule_type", "next_run", "enabled"}
    assert body["schedule_type"] == "interval"
    assert body["next_run"].endswith("Z")

    cron = register(officer_client, name="nightly", job_name="ping", schedule_type="crontab", cron="0 2 * * 1-5")
    assert cron.status_code == 200
    run_at = (timezone.now() + timedelta(days=1)).isoformat()
    once = register(officer_client, name="once", job_name="ping", schedule_type="one_off", run_at=run_at)
    assert once.status_code == 200

    tasks = {t["name"]: t for t in officer_client.get("/api/v1/jobs/scheduled").json()["tasks"]}
    assert set(tasks) == {"sync5", "nightly", "once"}
    assert {"name", "job_name", "schedule_type", "enabled", "last_run", "next_run", "run_count"} <= set(tasks["sync5"])
    assert tasks["nightly"]["cron"] == "0 2 * * 1-5"
    assert tasks["once"]["schedule_type"] == "one_off"
    assert tasks["sync5"]["run_count"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"schedule_type": "interval"}, "interval_seconds"),
        ({"schedule_type": "interval", "interval_seconds": 0}, "interval_seconds"),
        ({"schedule_type": "crontab"}, "cron"),
        ({"schedule_type": "crontab", "cron": "* * *"}, "cron"),
        ({"schedule_type": "crontab", "cron": "99 * * * *"}, "cron"),
        ({"schedule_type": "one_off"}, "run_at"),
        ({"schedule_type": "one_off", "run_at": "2001-01-01T00:00:00Z"}, "run_at"),
        ({"schedule_type": "weekly"}, "schedule_type"),
        ({"schedule_type": "interval", "interval_seconds": 5, "job_name": "nope"}, "job_name"),
        ({"schedule_type": "interval", "interval_seconds": 5, "args": {"x": 1}}, "args.x"),
        ({"schedule_type": "crontab", "cron": "0 1 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"schedule_type": "interval", "interval_seconds": 5, "name": "bad name!"}, "name"),
    ],
)
def test_register_validation(officer_client, body, field):
    payload = {"name": "t1", "job_name": "ping"} | body
    response = register(officer_client, **payload)
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]


def test_register_name_conflict_is_409(officer_client):
    assert (
        register(officer_client, name="dup", job_name="ping", schedule_type="interval", interval_seconds=5).status_code
        == 200
    )
    assert (
        register(officer_client, name="dup", job_name="ping", schedule_type="interval", interval_seconds=9).status_code
        == 409
    )


def test_scheduled_writes_are_officer_only(trader_client):
    scheduled_task_upsert(name="t", job_name="ping", interval_seconds=60)
    assert trader_client.get("/api/v1/jobs/scheduled").status_code == 200
    assert (
        register(trader_client, name="x", job_name="ping", schedule_type="interval", interval_seconds=5).status_code
        == 403
    )
    for action in ("enable", "disable", "run"):
        assert trader_client.post(f"/api/v1/jobs/scheduled/t/{action}").status_code == 403
    assert trader_client.delete("/api/v1/jobs/scheduled/t").status_code == 403


def test_enable_disable_run_and_unregister(officer_client, officer):
    scheduled_task_upsert(name="t", job_name="ping", interval_seconds=60, priority="high")
    disabled = officer_client.post("/api/v1/jobs/scheduled/t/disable").json()
    assert disabled["enabled"] is False
    assert disabled["next_run"] is None
    assert officer_client.post("/api/v1/jobs/scheduled/t/enable").json()["enabled"] is True

    run = officer_client.post("/api/v1/jobs/scheduled/t/run").json()
    assert run["task_name"] == "t"
    assert run["status"] == "triggered"
    job = Job.objects.get(pk=run["job_id"])
    assert (job.name, job.priority, job.scheduled_task, job.user_id) == ("ping", "high", "t", None)
    assert officer_client.get("/api/v1/jobs/scheduled").json()["tasks"][0]["run_count"] == 1

    assert officer_client.delete("/api/v1/jobs/scheduled/t").status_code == 204
    assert officer_client.post("/api/v1/jobs/scheduled/t/run").status_code == 404
    assert officer_client.delete("/api/v1/jobs/scheduled/t").status_code == 404


def test_bootstrap_adds_the_daily_cleanup(officer_client):
    from django.core.management import call_command

    call_command("bootstrap", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("bootstrap", stdout=open("/dev/null", "w"))  # noqa: SIM115
    tasks = officer_client.get("/api/v1/jobs/scheduled").json()["tasks"]
    cleanup = [task for task in tasks if task["name"] == "daily_cleanup"]
    assert len(cleanup) == 1
    assert cleanup[0]["job_name"] == "cleanup"
    assert cleanup[0]["cron"] == "30 3 * * *"


def test_job_detail_answers_null_for_no_error_worker_or_scheduled_task(trader_client, trader):
    job = make_job(trader)
    detail = trader_client.get(f"/api/v1/jobs/job/{job.pk}").json()
    assert (detail["error"], detail["worker"], detail["scheduled_task"]) == (None, None, None)
    done = make_job(trader, status="failed", error="boom", worker="w1@host", scheduled_task="nightly")
    detail = trader_client.get(f"/api/v1/jobs/job/{done.pk}").json()
    assert (detail["error"], detail["worker"], detail["scheduled_task"]) == ("boom", "w1@host", "nightly")


def test_scheduled_tasks_page_with_offset_and_count(officer_client):
    for name in ("a", "b", "c"):
        scheduled_task_upsert(name=name, job_name="ping", interval_seconds=60)
    body = officer_client.get("/api/v1/jobs/scheduled", {"limit": 2, "offset": 1}).json()
    assert body["count"] == 3
    assert [task["name"] for task in body["tasks"]] == ["b", "c"]
    assert officer_client.get("/api/v1/jobs/scheduled", {"limit": 0}).status_code == 400


def test_a_scheduled_task_named_register_can_be_listed_run_enabled_disabled_and_deleted(officer_client):
    response = register(officer_client, name="register", job_name="ping", schedule_type="interval", interval_seconds=60)
    assert response.status_code == 200, response.json()
    assert [task["name"] for task in officer_client.get("/api/v1/jobs/scheduled").json()["tasks"]] == ["register"]
    assert officer_client.post("/api/v1/jobs/scheduled/register/disable").json()["enabled"] is False
    assert officer_client.post("/api/v1/jobs/scheduled/register/enable").json()["enabled"] is True
    run = officer_client.post("/api/v1/jobs/scheduled/register/run").json()
    assert Job.objects.get(pk=run["job_id"]).scheduled_task == "register"
    assert officer_client.delete("/api/v1/jobs/scheduled/register").status_code == 204
    assert officer_client.get("/api/v1/jobs/scheduled").json()["tasks"] == []
    assert officer_client.delete("/api/v1/jobs/scheduled/register").status_code == 404
