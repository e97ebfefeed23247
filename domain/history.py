"""Periods during which a fact held: an appointment, an assignment, a place on the roster.

Aggregates keep these so that an act is judged by what held at its ``occurred_at``, not by
what holds when it is recorded (a late report of an act done the day before a class
teacher's release is still the class teacher's act). A period starts at the
``occurred_at`` of the event that began it and ends, exclusively, at that of the event
that ended it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class Term:
    """One period: from ``start`` (inclusive) to ``end`` (exclusive), open while ``end`` is None."""

    start: datetime
    end: datetime | None = None

    def holds_at(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


def held_at(terms: list[Term] | None, at: datetime | None) -> bool:
    """Whether any of ``terms`` holds at ``at`` (``None``: now, i.e. an open term)."""
    if not terms:
        return False
    if at is None:
        return terms[-1].end is None
    return any(term.holds_at(at) for term in terms)


def open_term(terms: list[Term] | None) -> Term | None:
    """The term that has not ended, if any (always the last one)."""
    if terms and terms[-1].end is None:
        return terms[-1]
    return None


def last_moment(terms: list[Term] | None) -> datetime | None:
    """When the latest of ``terms`` began or ended: a new term or end cannot be earlier."""
    if not terms:
        return None
    last = terms[-1]
    return last.end if last.end is not None else last.start
