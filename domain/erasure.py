"""The record that a person's personal data was destroyed on request (152-FZ).

It holds no personal data itself: pseudonymous ids, who asked, on which basis, which
categories. The destruction is done by destroying the subject's key (see
``personal_data``); this record is what the destruction act and log extract cite.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import ActorNotPermitted, DomainError
from sferum_audit.domain.personal_data import PERSONAL_DATA_CATEGORIES
from sferum_audit.domain.regulation import require_text


class ErasureNotPermitted(ActorNotPermitted):
    """Erasure is requested by the person or a parent for a child, and done by an
    administrator of the school where the person is registered (the operator of the
    personal data)."""

    code = "erasure-not-permitted"


class UnknownDataSubject(DomainError):
    """Only a person the school knows (a profile registered there, or a person on its
    roster) can be erased: an erasure of an id that exists nowhere proves nothing."""

    code = "unknown-data-subject"


@dataclass(frozen=True, slots=True)
class ErasureParties:
    """What the log says about the people an erasure concerns, read by the handler.

    ``subject_schools``: the schools where the subject is registered (their profile's
    school, and every school whose roster lists them); empty when the log knows them
    nowhere. ``requester_is_parent``: the requester's profile is a parent's that names
    the subject as their child. ``actor_is_administrator``: the actor administers the
    school the command is for.
    """

    subject_schools: frozenset[str]
    requester_is_parent: bool
    actor_is_administrator: bool


class Erasure(AuditedAggregate):
    """One erasure of one data subject's personal data."""

    @staticmethod
    def create_id(school_id: str, erasure_id: str) -> UUID:
        return stable_id("erasure", school_id, erasure_id)

    @staticmethod
    def check_may_erase(
        ctx: CommandContext,
        *,
        school_id: str,
        subject_id: str,
        requested_by: str,
        parties: ErasureParties,
    ) -> None:
        """The three rules of an erasure (152-FZ art. 21; order 2.3):

        1. the subject exists: the log knows them at some school;
        2. an administrator of a school where the subject is registered erases (the
           operator of their data): an administrator of another school may not;
        3. the request comes from the person, or from a parent registered for that child.
        """
        if not parties.subject_schools:
            raise UnknownDataSubject(
                f"{subject_id!r} is not a person known to the log: no profile and no roster "
                "entry; nothing to erase"
            )
        if ctx.actor_role != "administrator" or not parties.actor_is_administrator:
            raise ErasureNotPermitted(
                "personal data is destroyed by a platform administrator of the school (2.3)"
            )
        if school_id not in parties.subject_schools:
            raise ErasureNotPermitted(
                f"{subject_id} is not registered at school {school_id}: only an "
                "administrator of the school where the person is registered may erase "
                "their data (2.3)"
            )
        if requested_by != subject_id and not parties.requester_is_parent:
            raise ErasureNotPermitted(
                f"{requested_by} may not request erasure of {subject_id}'s data: "
                "the person asks, or a parent registered for their child"
            )

    @classmethod
    def record(
        cls,
        ctx: CommandContext,
        *,
        school_id: str,
        erasure_id: str,
        subject_id: str,
        requested_by: str,
        basis: str,
        parties: ErasureParties,
    ) -> Self:
        cls.check_may_erase(
            ctx,
            school_id=school_id,
            subject_id=subject_id,
            requested_by=requested_by,
            parties=parties,
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


# -- finding a person's name in free text ------------------------------------------------------


def _fold(text: str) -> str:
    """Case and ``ё`` folded, runs of whitespace made one space: how names are compared."""
    return " ".join(text.casefold().replace("ё", "е").split())


def name_variants(display_names: Iterable[str]) -> tuple[str, ...]:
    """The forms in which free text may name a person registered as ``display_names``:
    each name as registered, its words reversed ("Алиса Секретова" for "Секретова
    Алиса"), and for a three-word Russian name (surname, given name, patronymic) the
    given name with the surname either way round. Folded (see ``_fold``); names of one
    word shorter than four letters are left out (they would match ordinary words)."""
    found: set[str] = set()
    for name in display_names:
        words = _fold(name).split()
        if not words or (len(words) == 1 and len(words[0]) < 4):
            continue
        found.add(" ".join(words))
        found.add(" ".join(reversed(words)))
        if len(words) == 3:
            found.add(f"{words[0]} {words[1]}")
            found.add(f"{words[1]} {words[0]}")
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


def mentions(text: str, variants: Iterable[str]) -> bool:
    """Whether ``text`` names the person in one of the ``name_variants``."""
    folded = _fold(text)
    return any(variant in folded for variant in variants)
