"""The record that a person's personal data was destroyed on request (152-FZ).

It holds no personal data itself: pseudonymous ids, who asked, on which basis, which
categories. The destruction is done by destroying the subject's key (see
``personal_data``); this record is what the destruction act and log extract cite.
"""

from __future__ import annotations

from typing import Self
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import ActorNotPermitted
from sferum_audit.domain.personal_data import PERSONAL_DATA_CATEGORIES
from sferum_audit.domain.regulation import require_text


class ErasureNotPermitted(ActorNotPermitted):
    """Erasure is requested by the person or a parent for a child, and done by an
    administrator of the school (the operator of the personal data)."""

    code = "erasure-not-permitted"


class Erasure(AuditedAggregate):
    """One erasure of one data subject's personal data."""

    @staticmethod
    def create_id(school_id: str, erasure_id: str) -> UUID:
        return stable_id("erasure", school_id, erasure_id)

    @classmethod
    def record(
        cls,
        ctx: CommandContext,
        school_id: str,
        erasure_id: str,
        subject_id: str,
        requested_by: str,
        requester_is_parent: bool,
        basis: str,
        is_administrator: bool,
    ) -> Self:
        if ctx.actor_role != "administrator" or not is_administrator:
            raise ErasureNotPermitted(
                "personal data is destroyed by a platform administrator of the school (2.3)"
            )
        if requested_by != subject_id and not requester_is_parent:
            raise ErasureNotPermitted(
                f"{requested_by} may not request erasure of {subject_id}'s data: "
                "the person asks, or a parent for their child"
            )
        require_text(erasure_id, "erasure id", 100)
        require_text(basis, "basis", 500)
        return cls(
            ctx=ctx,
            school_id=school_id,
            erasure_id=erasure_id,
            subject_id=subject_id,
            requested_by=requested_by,
            basis=basis,
            categories=list(PERSONAL_DATA_CATEGORIES),
        )

    @event("Recorded")
    def __init__(
        self,
        ctx: CommandContext,
        school_id: str,
        erasure_id: str,
        subject_id: str,
        requested_by: str,
        basis: str,
        categories: list[str],
    ) -> None:
        self.school_id = school_id
        self.erasure_id = erasure_id
        self.subject_id = subject_id
        self.requested_by = requested_by
        self.basis = basis
        self.categories = list(categories)
