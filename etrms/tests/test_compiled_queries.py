"""Pages compiled once per shape (etrms.compiled_queries): each call gets the rows its
own values select, converted as Django converts them, and a value the SQL would not
take as a parameter is refused instead of read wrongly."""

import uuid

import pytest
from django.contrib.auth import get_user_model

from etrms.compiled_queries import compiled_page

pytestmark = pytest.mark.django_db


def _users(values: dict):
    """Users by staff flag and first name, without one of them, by username."""
    return (
        get_user_model()
        .objects.filter(is_staff=values["staff"], first_name=values["first"])
        .exclude(pk=values["without"])
        .order_by("username")
        .values_list("username", "date_joined", "is_active", "id")
    )


@pytest.fixture
def users(make_user):
    made = [
        make_user(f"u{i:02d}-{uuid.uuid4().hex[:4]}", is_staff=i % 2 == 0, first_name="ann" if i < 6 else "")
        for i in range(12)
    ]
    made[3].is_active = False
    made[3].save(update_fields=["is_active"])
    return made


def test_every_call_reads_its_own_values_page_and_conversions(users):
    calls = [
        ({"staff": True, "first": "ann", "without": users[0].pk}, 10, 0),
        ({"staff": False, "first": "ann", "without": users[1].pk}, 2, 1),
        ({"staff": False, "first": "", "without": users[7].pk}, 10, 0),
        ({"staff": True, "first": "ann", "without": users[2].pk}, 1, 1),
        ({"staff": False, "first": "bob", "without": users[1].pk}, 10, 0),
    ]
    for _ in range(2):  # the second round runs SQL compiled in the first
        for values, limit, offset in calls:
            expected = [tuple(row) for row in _users(values)[offset : offset + limit]]
            rows = compiled_page("test.users", _users, values, limit=limit, offset=offset)
            assert rows == expected
            assert all(moment.tzinfo is not None for _, moment, _, _ in rows)  # Django's converters ran
    inactive = compiled_page(
        "test.users", _users, {"staff": False, "first": "ann", "without": users[0].pk}, limit=10, offset=0
    )
    assert (users[3].username, False) in {(name, active) for name, _, active, _ in inactive}


def test_a_value_the_sql_would_not_take_as_a_parameter_is_refused(users):
    def prefixed(values):  # a LIKE pattern made of the value
        return get_user_model().objects.filter(username__startswith=values["prefix"]).order_by("id").values_list("id")

    def written(values):  # the value in the SQL text
        name = values["name"]
        where = [f"username <> '{name}'"]
        return get_user_model().objects.extra(where=where).order_by("id").values_list("id")  # noqa: S610 (under test)

    with pytest.raises(RuntimeError, match="transformed"):
        compiled_page("test.prefixed", prefixed, {"prefix": "u0"}, limit=5, offset=0)
    with pytest.raises(RuntimeError, match="written into the SQL"):
        compiled_page("test.written", written, {"name": "u00"}, limit=5, offset=0)


def test_only_ordered_unsliced_querysets_have_pages(users):
    def unordered(values):
        return get_user_model().objects.filter(first_name=values["first"]).order_by().values_list("id")

    def sliced(values):
        return get_user_model().objects.filter(first_name=values["first"]).order_by("id").values_list("id")[:3]

    with pytest.raises(ValueError, match="ordered"):
        compiled_page("test.unordered", unordered, {"first": "ann"}, limit=5, offset=0)
    with pytest.raises(ValueError, match="unsliced"):
        compiled_page("test.sliced", sliced, {"first": "ann"}, limit=5, offset=0)
