"""Durations as Restate writes them: parsing the `delay` query parameter and admin settings, and
formatting durations as its admin API does.

`10s`, `500ms`, `1m30s`, `60 sec`, `2 hours`, ISO-8601 (`PT10S`, `P1DT2H`) and a bare number of
milliseconds (what restate-sdk's client sends).
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "ms": 0.001, "msec": 0.001, "msecs": 0.001, "millis": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}
# ASCII digits only: `\d` and `str.isdigit()` would also accept other scripts' digits and '²'.
_MILLIS = re.compile(r"[0-9]+", re.ASCII)
_FRIENDLY_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]+)\s*", re.ASCII)
_ISO = re.compile(
    r"^P(?:(?P<w>[0-9]+(?:\.[0-9]+)?)W)?(?:(?P<d>[0-9]+(?:\.[0-9]+)?)D)?"
    r"(?:T(?:(?P<h>[0-9]+(?:\.[0-9]+)?)H)?(?:(?P<m>[0-9]+(?:\.[0-9]+)?)M)?(?:(?P<s>[0-9]+(?:\.[0-9]+)?)S)?)?$",
    re.IGNORECASE | re.ASCII,
)


class InvalidDuration(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    """Parse a `delay`; raises `InvalidDuration` (never anything else) when it is not one."""
    value = text.strip()
    if not value:
        raise InvalidDuration("empty duration")
    try:
        return _parse(value, text)
    except InvalidDuration:
        raise
    except (OverflowError, ValueError):  # beyond timedelta, or more digits than int() converts
        raise InvalidDuration(f"duration out of range: {text!r}") from None


def _parse(value: str, text: str) -> timedelta:
    if _MILLIS.fullmatch(value):
        return timedelta(milliseconds=int(value))
    if value[0] in "pP":
        match = _ISO.match(value)
        if not match or value.upper() in ("P", "PT") or value.upper().endswith("T"):
            raise InvalidDuration(f"not an ISO-8601 duration: {text!r}")
        parts = {k: float(v) for k, v in match.groupdict().items() if v}
        return timedelta(weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
                         minutes=parts.get("m", 0), seconds=parts.get("s", 0))
    total = 0.0
    position = 0
    for match in _FRIENDLY_PART.finditer(value):
        if match.start() != position:
            break
        unit = _UNITS.get(match.group(2).lower())
        if unit is None:
            raise InvalidDuration(f"unknown unit {match.group(2)!r} in {text!r}")
        total += float(match.group(1)) * unit
        position = match.end()
    if position != len(value) or position == 0:
        raise InvalidDuration(f"not a duration: {text!r}")
    return timedelta(seconds=total)


_FORMAT_UNITS = (("day", 86400_000), ("h", 3600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def format_duration(value: timedelta) -> str:
    """A duration as Restate's admin API writes one (humantime: `1day`, `2days 3h`, `500ms`)."""
    millis = round(value.total_seconds() * 1000)
    if millis <= 0:
        return "0s"
    parts = []
    for unit, size in _FORMAT_UNITS:
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}s" if unit == "day" and count > 1 else f"{count}{unit}")
    return " ".join(parts)
