"""`parse_duration`: the `delay` query parameter in every form Restate's ingress accepts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from restate_pg.api.durations import InvalidDuration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # bare integers are milliseconds (what restate-sdk's client sends)
        ("0", timedelta(0)),
        ("1500", timedelta(milliseconds=1500)),
        ("  250 ", timedelta(milliseconds=250)),
        # friendly
        ("10s", timedelta(seconds=10)),
        ("500ms", timedelta(milliseconds=500)),
        ("60 sec", timedelta(seconds=60)),
        ("60sec", timedelta(seconds=60)),
        ("1m30s", timedelta(seconds=90)),
        ("1h 30m", timedelta(minutes=90)),
        ("2 hours", timedelta(hours=2)),
        ("1.5s", timedelta(milliseconds=1500)),
        ("3 days", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        ("10 Seconds", timedelta(seconds=10)),
        ("5 millis", timedelta(milliseconds=5)),
        # ISO-8601
        ("PT10S", timedelta(seconds=10)),
        ("PT60S", timedelta(seconds=60)),
        ("pt1.5s", timedelta(milliseconds=1500)),
        ("PT1M", timedelta(minutes=1)),
        ("PT1H2M3S", timedelta(hours=1, minutes=2, seconds=3)),
        ("P1D", timedelta(days=1)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P2W", timedelta(weeks=2)),
        ("PT0S", timedelta(0)),
    ],
)
def test_accepted(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "soon",
        "s",
        "10x",
        "10s5",
        "-5s",
        "-100",
        "1.5",  # a fraction needs a unit
        "1e3s",
        "P",
        "PT",
        "P1DT",
        "PT1e5S",
        "P1Y",  # calendar units have no fixed length
        "P1M",
        "PT-1S",
        "²",  # str.isdigit() is true for it, int() is not
        "١٠s",  # digits of another script
        "10 s s",
    ],
)
def test_refused(text):
    with pytest.raises(InvalidDuration):
        parse_duration(text)


@pytest.mark.parametrize("text", ["99999999999999999999", "9" * 5000, "999999999999 weeks", "9" * 400 + "s", "PT" + "9" * 400 + "S"])
def test_out_of_range_is_an_invalid_duration_not_a_crash(text):
    with pytest.raises(InvalidDuration, match="out of range"):
        parse_duration(text)


def test_invalid_duration_is_a_value_error():
    assert issubclass(InvalidDuration, ValueError)
