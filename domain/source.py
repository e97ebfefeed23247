"""A command source: an Ed25519 public key registered for one school, in the log.

Every command that enters the service (over NATS, from ``record``, from the friendly CLI
commands) is signed by a source. The school's administration (2.2) or one of its platform
administrators (2.3) registers a source, rotates its key and revokes it; each act is an
event, so who could write for a school, and since when, is part of the audited history.

A source says which actors it may assert:

- ``integration``: the platform's integration (a publisher, the local CLI): any actor of
  its school. The actor's claimed role is still verified against the records by the
  command's own rules.
- ``person``: a person's own key: only that person (``person_id``) as the actor.

Signature checks need a crypto library and live in the application layer; this module
only keeps the key (base64 of the 32 raw bytes) and the rules about who may use it for what.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final, Self
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import ActorNotPermitted, DomainError, InvalidValue
from sferum_audit.domain.regulation import require_one_of, require_text

INTEGRATION: Final = "integration"
PERSON: Final = "person"
SOURCE_KINDS: Final = frozenset({INTEGRATION, PERSON})
ED25519_KEY_SIZE: Final = 32


class NotSourceRegistrar(ActorNotPermitted):
    """Only the school administration (2.2) or a platform administrator of the school (2.3)
    registers, rotates or revokes the school's sources."""

    code = "not-source-registrar"


class SourceRevoked(DomainError):
    """The source was revoked: nothing signed by it is accepted any more."""

    code = "source-revoked"


class SourceWrongSchool(DomainError):
    """A source writes only for the school it is registered for."""

    code = "source-wrong-school"


class ActorNotVouched(DomainError):
    """A person's own key vouches only for that person as the actor."""

    code = "actor-not-vouched"


class SourceAlreadyRevoked(DomainError):
    code = "source-already-revoked"


def check_public_key(public_key: str) -> str:
    """The key as given, if it is base64 of the 32 raw bytes of an Ed25519 public key."""
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue("public_key must be base64 of a 32-byte Ed25519 key") from None
    if len(raw) != ED25519_KEY_SIZE:
        raise InvalidValue(
            f"public_key must be base64 of a 32-byte Ed25519 key, not of {len(raw)} bytes"
        )
    return public_key


def check_registrar(ctx: CommandContext, school_id: str, is_administrator: bool) -> None:
    """The actor is the school administration (2.2) or an administrator of the school (2.3)
    acting as one."""
    if ctx.actor_role == "school-administration":
        return
    if ctx.actor_role == "administrator" and is_administrator:
        return
    raise NotSourceRegistrar(
        f"the sources of school {school_id} are managed by its administration (2.2) or a "
        f"platform administrator of the school (2.3), not by {ctx.actor_id} "
        f"as {ctx.actor_role}"
    )


class Source(AuditedAggregate):
    """One registered source of commands for one school."""

    @staticmethod
    def create_id(source_id: str) -> UUID:
        return stable_id("source", source_id)

    class Registered(AuditedAggregate.Created):
        """A source's key was registered for a school."""

        school_id: str
        source_id: str
        kind: str
        person_id: str | None
        public_key: str

    class Rotated(AuditedAggregate.Event):
        """The source's key was replaced; the old key signs nothing from now on."""

        public_key: str

    class Revoked(AuditedAggregate.Event):
        """The source was withdrawn; nothing it signs is accepted from now on."""

        reason: str

    @classmethod
    def register(
        cls,
        ctx: CommandContext,
        *,
        school_id: str,
        source_id: str,
        kind: str,
        person_id: str | None,
        public_key: str,
        registrar_is_administrator: bool,
    ) -> Self:
        check_registrar(ctx, school_id, registrar_is_administrator)
        require_text(source_id, "source id", 200)
        require_one_of(kind, SOURCE_KINDS, "source kind")
        if kind == PERSON and not person_id:
            raise InvalidValue("a person's source names the person (person_id)")
        if kind == INTEGRATION and person_id is not None:
            raise InvalidValue("an integration source vouches for its school, not one person")
        return cls(
            ctx=ctx,
            school_id=school_id,
            source_id=source_id,
            kind=kind,
            person_id=person_id,
            public_key=check_public_key(public_key),
        )

    @event(Registered)
    def __init__(
        self,
        ctx: CommandContext,
        school_id: str,
        source_id: str,
        kind: str,
        person_id: str | None,
        public_key: str,
    ) -> None:
        self.school_id = school_id
        self.source_id = source_id
        self.kind = kind
        self.person_id = person_id
        self.public_key = public_key
        self.revoked = False

    # -- guards -------------------------------------------------------------------------------

    def check_active(self) -> None:
        if self.revoked:
            raise SourceRevoked(f"source {self.source_id} was revoked")

    def check_school(self, school_id: str) -> None:
        if school_id != self.school_id:
            raise SourceWrongSchool(
                f"source {self.source_id} writes for school {self.school_id}, not for {school_id}"
            )

    def check_may_assert(self, school_id: str, actor_id: str) -> None:
        """The command's school is the source's, and a person's source asserts only that
        person."""
        self.check_school(school_id)
        if self.kind == PERSON and actor_id != self.person_id:
            raise ActorNotVouched(
                f"source {self.source_id} is {self.person_id}'s own key; "
                f"it does not vouch for {actor_id}"
            )

    # -- commands -----------------------------------------------------------------------------

    def rotate(
        self, ctx: CommandContext, public_key: str, registrar_is_administrator: bool
    ) -> None:
        check_registrar(ctx, self.school_id, registrar_is_administrator)
        self.check_active()
        self._rotated(ctx=ctx, public_key=check_public_key(public_key))

    @event(Rotated)
    def _rotated(self, ctx: CommandContext, public_key: str) -> None:
        self.public_key = public_key

    def revoke(self, ctx: CommandContext, reason: str, registrar_is_administrator: bool) -> None:
        check_registrar(ctx, self.school_id, registrar_is_administrator)
        require_text(reason, "reason")
        if self.revoked:
            raise SourceAlreadyRevoked(f"source {self.source_id} is already revoked")
        self._revoked(ctx=ctx, reason=reason)

    @event(Revoked)
    def _revoked(self, ctx: CommandContext, reason: str) -> None:
        self.revoked = True
