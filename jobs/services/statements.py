# ruff: noqa: S608 -- the SQL text names the model's table and columns (quoted); values are parameters.
"""The worker's two statements per job, written once per database and run with each
job's values: the start (one `UPDATE ... RETURNING` that marks the attempt processing
and reads its row) and the completion.

The ORM built and compiled the start UPDATE, the row's read and the completion UPDATE
for every job: about 1.3 ms of a no-op job's worker CPU against well under 0.1 ms for
the statements themselves (bench/README.md, Jobs). The ORM cannot write
`UPDATE ... RETURNING` (SQLite >= 3.35 and PostgreSQL both run it), so the text is
written here from the model's columns with the connection's quoting; each value is
adapted by its field as `QuerySet.update()` and `filter()` adapt it, and the returned
row goes through Django's converters (`etrms.compiled_queries`) into a `Job` as
`Job.objects.get` builds it. Only SQL text is reused: every value is a parameter.
"""

from dataclasses import dataclass

from django.db import connections, router

from etrms.compiled_queries import column_converters, rows_converted
from jobs.models import NOT_STARTED, Job, JobStatus


@dataclass(frozen=True)
class _Statements:
    start: str
    complete: str
    converters: tuple  # of the start's RETURNING columns (Job's concrete fields)


_statements: dict = {}
_FIELDS = tuple(Job._meta.concrete_fields)
_FIELD_NAMES = tuple(field.attname for field in _FIELDS)
_field = Job._meta.get_field


def _compile(connection) -> _Statements:
    quote = connection.ops.quote_name
    table = quote(Job._meta.db_table)
    id_, attempt, status, run_at = (quote(_field(name).column) for name in ("id", "attempt", "status", "run_at"))
    started_at, worker, worker_pid = (quote(_field(name).column) for name in ("started_at", "worker", "worker_pid"))
    result, error, completed_at = (quote(_field(name).column) for name in ("result", "error", "completed_at"))
    not_started = ", ".join(["%s"] * len(NOT_STARTED))
    returning = ", ".join(quote(field.column) for field in _FIELDS)
    start = (
        f"UPDATE {table} SET {status} = %s, {started_at} = %s, {worker} = %s, {worker_pid} = %s "
        f"WHERE {id_} = %s AND {attempt} = %s AND {status} IN ({not_started}) AND {run_at} IS NULL "
        f"RETURNING {returning}"
    )
    complete = (
        f"UPDATE {table} SET {status} = %s, {result} = %s, {error} = %s, {completed_at} = %s "
        f"WHERE {id_} = %s AND {attempt} = %s AND {status} = %s"
    )
    columns = [field.get_col(Job._meta.db_table) for field in _FIELDS]
    return _Statements(start, complete, column_converters(columns, connection))


def _connection_and_statements():
    using = router.db_for_write(Job)
    connection = connections[using]
    key = (using, connection.vendor)
    statements = _statements.get(key)
    if statements is None:
        statements = _statements[key] = _compile(connection)
    return connection, statements


def job_start(*, job_id, attempt: int, now, worker: str, worker_pid: int) -> Job | None:
    """Mark the attempt `processing` (only if it is current, not started and not
    waiting for its time) and return its row, or None when nothing was started."""
    connection, statements = _connection_and_statements()
    params = [
        JobStatus.PROCESSING.value,
        _field("started_at").get_db_prep_save(now, connection),
        worker,
        worker_pid,
        Job._meta.pk.get_db_prep_value(job_id, connection),
        attempt,
        *(status.value for status in NOT_STARTED),
    ]
    with connection.cursor() as cursor:
        cursor.execute(statements.start, params)
        rows = cursor.fetchall()
    if not rows:
        return None
    (row,) = rows_converted(rows, statements.converters, connection)
    return Job.from_db(connection.alias, _FIELD_NAMES, row)


def job_complete(*, job_id, attempt: int, result, now) -> bool:
    """Record the attempt's success (only if it is still the processing one)."""
    connection, statements = _connection_and_statements()
    params = [
        JobStatus.COMPLETED.value,
        _field("result").get_db_prep_save(result, connection),
        "",
        _field("completed_at").get_db_prep_save(now, connection),
        Job._meta.pk.get_db_prep_value(job_id, connection),
        attempt,
        JobStatus.PROCESSING.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute(statements.complete, params)
        return cursor.rowcount > 0
