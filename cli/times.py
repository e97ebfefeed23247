"""Times as people read and type them: the school's time zone, one rule for times typed in.

Listings show times in the school's time zone (``SFERUM_AUDIT_TIME_ZONE``, default
``Europe/Kaliningrad``, the zone of the school whose order the product enforces), to the
minute; exports keep the stored UTC text with microseconds.

Every time typed on the command line follows one rule (``parse_time``): a date and time
must carry its offset (``2024-12-05T09:00+02:00`` or ``...Z``), as the commands' JSON
does; a bare date (``2024-12-05``) means that day in the school's time zone, from its
first moment (``--since``) or through its last (``--until``, ``--as-of``, ``--now``).
A time without an offset is refused with an example in the configured zone, never
guessed as UTC.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

DEFAULT_TIME_ZONE = "Europe/Kaliningrad"
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def school_zone() -> tzinfo:
    """The configured zone (``SFERUM_AUDIT_TIME_ZONE``, an IANA name or ``UTC``; default
    ``Europe/Kaliningrad``); an unknown name is an error that says how to fix it."""
    return _zone(os.environ.get("SFERUM_AUDIT_TIME_ZONE") or DEFAULT_TIME_ZONE)


@cache
def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"SFERUM_AUDIT_TIME_ZONE: unknown time zone {name!r}; use an IANA name such as "
            f"{DEFAULT_TIME_ZONE} or Europe/Moscow, or UTC"
        ) from None


def zone_name() -> str:
    return str(school_zone())


def _example(value: str) -> str:
    offset = datetime.now(school_zone()).strftime("%z")
    return f"{value}{offset[:3]}:{offset[3:]}"


def parse_time(text: str, flag: str, *, end_of_day: bool = False) -> datetime:
    """A time typed for ``flag`` under the rule in this module's docstring."""
    text = text.strip()
    if DATE_ONLY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a date", param_hint=flag) from None
        start = datetime.combine(day, time(), tzinfo=school_zone())
        if end_of_day:
            return (start + timedelta(days=1)) - timedelta(microseconds=1)
        return start
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time such as {_example('2024-12-05T09:00')} "
            "or a date such as 2024-12-05",
            param_hint=flag,
        ) from None
    if value.tzinfo is None:
        raise typer.BadParameter(
            f"{text!r} has no timezone; add one, e.g. {_example(text)} ({zone_name()}) or "
            f"{text}Z (UTC), or give a bare date, read in {zone_name()}",
            param_hint=flag,
        )
    return value


def local(value: datetime | str | None) -> str:
    """A stored time as the listings show it: the school's zone, to the minute."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(school_zone()).strftime("%Y-%m-%d %H:%M")
