"""The one formatting module: decimals as people write them, as the API documents
write them, and JSON numbers converted once."""

from datetime import UTC, datetime
from decimal import Decimal

from etrms.formatting import decimal_human, decimal_plain, decimal_str, iso_utc, json_numbers


def test_decimals_as_people_write_them_not_as_stored_15_not_15_000000000000():
    assert decimal_plain(Decimal("15.000000000000")) == "15"
    assert decimal_plain(Decimal("50000.000000000000")) == "50000"  # no exponent (5E+4)
    assert decimal_plain(Decimal("0.500000000000")) == "0.5"
    assert decimal_human(Decimal("250000.000000000000")) == "250,000"
    assert decimal_human(Decimal("1234.500000")) == "1,234.5"
    assert decimal_human(Decimal("-0.000100")) == "-0.0001"
    assert decimal_human(None) == ""


def test_api_decimal_strings_keep_at_least_two_places():
    assert decimal_str(Decimal("10000")) == "10000.00"
    assert decimal_str(Decimal("0.123456")) == "0.123456"


def test_json_numbers_converts_decimals_inside_dicts_and_lists_once():
    total = Decimal("74946.48") + Decimal("0.01")
    assert json_numbers({"total": total, "legs": [Decimal("1.5"), {"x": Decimal("2")}], "n": 3}) == {
        "total": 74946.49,
        "legs": [1.5, {"x": 2.0}],
        "n": 3,
    }


def test_iso_utc_writes_z():
    assert iso_utc(datetime(2026, 3, 2, 12, 0, tzinfo=UTC)) == "2026-03-02T12:00:00Z"


def test_iso_utc_reads_the_databases_text_of_a_timestamp():
    # SQLite keeps naive UTC text (microseconds only when there are some), PostgreSQL
    # writes its offset; both come out as the datetime itself would.
    assert iso_utc("2026-12-01 14:18:31.344096") == "2026-12-01T14:18:31.344096Z"
    assert iso_utc("2026-12-01 14:18:31") == "2026-12-01T14:18:31Z"
    assert iso_utc("2026-12-01 14:18:31.344+00") == "2026-12-01T14:18:31.344000Z"
    assert iso_utc("2026-12-01 16:18:31+02") == "2026-12-01T14:18:31Z"
    moment = datetime(2026, 12, 1, 14, 18, 31, 5, tzinfo=UTC)
    assert iso_utc(str(moment.replace(tzinfo=None))) == iso_utc(moment)
