"""A command the service refused, kept with its payload sealed, and the reason in the clear.

Whatever arrives on the ingest and is refused (bytes that are not JSON, JSON that breaks
the command schema, a command that breaks a rule of the regulation or is sent by someone
without the authority) is acknowledged, so it is not delivered again, and recorded here:
nothing is dropped silently. One delivery gives one record: the id comes from a stable
key of the delivery (stream, stream creation time and sequence), so a redelivered message
finds the record it already has.

A refused command has no context of its own when its payload cannot be read; the record
then carries a ``system`` context (``actor_id`` ``system``, ``occurred_at`` the time it was
refused) with the delivery key as its command id.

**The payload is personal data and is sealed.** A refused payload may hold a name, an
excerpt, a reason about a pupil: anything an accepted command would hold, in one piece.
So erasing a person must make every refused payload that names them unreadable, like their
fields in accepted events, while the reason for the refusal (error code and message,
subject, school, command type and id: no personal data) stays readable for the operator.

* **Who a payload names.** When the payload parses as a JSON object, the person ids at the
  places the command schema puts them (``actor.id``, the person fields such as
  ``profile_id``, ``author_id`` or ``subject_id``, and ``children``) are collected, whether
  or not the rest of the command is valid. Only strings that can be ids (the schema's
  ``Id``: 1 to 200 characters, no whitespace) are taken: nothing else can name a person
  whom ``forget`` could erase. They are kept in the clear as ``named_persons`` (ids are
  pseudonymous, as everywhere in the log), so the destruction act's log extract finds the
  record too.
* **The rejection's own subject.** Every record also has a data subject of its own,
  ``rejected-command/<record id>``, with a key in the same ``subject_keys`` table. Bytes
  that are not JSON, or JSON that names nobody at a known place, are sealed under this
  key alone; ``sferum-audit forget-rejected`` destroys it when an operator learns that a
  refused payload holds someone's personal data (after recording who did so, and why).
* **Unreadable once any of them is forgotten.** The payload is sealed once, with the
  mapper's AES-256-GCM sealing, under a fresh data key of its own. That data key is split
  into XOR shares, one per subject (the rejection's own and each named person), and each
  share is sealed under its subject's key exactly as the mapper seals a personal field
  (``{"subject", "sealed"}``, the subject bound as associated data). Reading needs every
  share, so destroying any one of those keys, by ``forget`` through the CLI or an erasure
  command over NATS, makes the payload unreadable for good; the stored bytes, and so the
  Merkle seal, do not change. A payload that names someone already forgotten is not kept
  at all (it is recorded as erased).
* A payload naming more than ``MAX_NAMED_PERSONS`` people is no command the schema allows;
  it is recorded as erased rather than creating a key per id it lists.

**Every record fits in one NATS message.** The relay publishes each record on the events
stream, so a record must stay well below NATS's max payload (1 MiB by default) whatever
came in. A payload longer than ``KEPT_PAYLOAD_BYTES`` (64 KiB) is kept as its first
``KEPT_PAYLOAD_BYTES`` bytes (cut at a UTF-8 character boundary), with ``payload_size`` (the
full length in bytes) and ``payload_sha256`` (the digest of the full bytes) so the operator
can still match it against the sender's copy; ``payload_truncated`` says so. The error
message is cut at ``MAX_ERROR_MESSAGE`` characters and ids taken from headers at
``MAX_ID_CHARS``. The largest record, a 64 KiB binary payload sealed (base64 twice) with
``MAX_NAMED_PERSONS`` shares, stays under 300 KB.

Records kept before payloads were sealed hold ``payload`` in plain text; they are shown as
they are, and erasure cannot reach them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.application import Application
from eventsourcing.domain import event

from sferum_audit.application.commands import PERSON_ID_FIELDS, PERSON_LIST_FIELDS
from sferum_audit.application.personal_data_mapper import open_sealed, seal
from sferum_audit.application.subject_keys import KEY_BYTES, SubjectKeys
from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import DomainError
from sferum_audit.domain.personal_data import ERASED
from sferum_audit.domain.regulation import require_text

SYSTEM_ACTOR = "system"
SUBJECT_PREFIX: Final = "rejected-command/"
ENVELOPE_VERSION: Final = 1
MAX_NAMED_PERSONS: Final = 100
KEPT_PAYLOAD_BYTES: Final = 65_536
MAX_ERROR_MESSAGE: Final = 2_000
MAX_ID_CHARS: Final = 200

_ID = re.compile(r"[^\s]{1,200}")

PayloadState = Literal["readable", "erased", "plain"]


def system_context(key: str, now: datetime | None = None) -> CommandContext:
    """The context of a refusal whose payload names no actor (invalid JSON or schema)."""
    return CommandContext(
        actor_id=SYSTEM_ACTOR,
        actor_role="system",
        occurred_at=now or datetime.now(UTC),
        command_id=key,
        correlation_id=key,
    )


SealedEnvelope = dict[str, int | str | list[dict[str, str]]]
"""A sealed payload as stored: its version, one key share per subject, the sealed text."""


class PayloadNotErasable(DomainError):
    """The rejection was kept before payloads were sealed: its plain text cannot be erased."""

    code = "payload-not-erasable"


class RejectedCommand(AuditedAggregate):
    """One refused delivery: what came in (sealed), where from, and why it was refused.

    ``payload`` is the plain text only in records kept before payloads were sealed; a
    record kept now has ``payload`` ``None`` and the sealed envelope in ``sealed_payload``
    (``None`` as well when the payload was erased on arrival).
    """

    @staticmethod
    def create_id(delivery_key: str) -> UUID:
        return stable_id("rejected-command", delivery_key)

    @event("Recorded")
    def __init__(
        self,
        ctx: CommandContext,
        delivery_key: str,
        school_id: str | None,
        command_type: str | None,
        command_id: str | None,
        subject: str,
        error_code: str,
        error_message: str,
        payload: str | None,
        payload_encoding: str,
        sealed_payload: SealedEnvelope | None = None,
        named_persons: list[str] | None = None,
        payload_size: int | None = None,
        payload_sha256: str | None = None,
        payload_truncated: bool = False,
    ) -> None:
        self.delivery_key = delivery_key
        self.school_id = school_id
        self.command_type = command_type
        self.command_id = command_id
        self.subject = subject
        self.error_code = error_code
        self.error_message = error_message
        self.payload = payload
        self.payload_encoding = payload_encoding
        self.sealed_payload = sealed_payload
        self.named_persons = list(named_persons or [])
        self.payload_size = payload_size
        self.payload_sha256 = payload_sha256
        self.payload_truncated = payload_truncated
        self.payload_erased_by: str | None = None

    def erase_payload(self, ctx: CommandContext, basis: str) -> None:
        """Records that the payload is erased on request (the caller destroys the key)."""
        if self.payload is not None:
            raise PayloadNotErasable(
                "this rejection was kept before payloads were sealed; its payload is plain "
                "text in the log and cannot be erased"
            )
        require_text(basis, "basis", 500)
        if self.payload_erased_by is None:
            self._payload_erased(ctx, basis)

    @event("PayloadErased")
    def _payload_erased(self, ctx: CommandContext, basis: str) -> None:
        self.payload_erased_by = ctx.actor_id


# -- who a payload names ----------------------------------------------------------------------


def rejection_subject(rejection_id: UUID) -> str:
    """The data subject of the rejection itself (its key seals one share of every payload)."""
    return f"{SUBJECT_PREFIX}{rejection_id}"


def _payload_label(rejection_id: UUID) -> str:
    # Associated data of the payload's own ciphertext: binds it to this record.
    return f"{rejection_subject(rejection_id)}/payload"


def named_persons(data: bytes) -> list[str]:
    """The person ids the payload names where the command schema puts them (sorted), or
    none when the payload is not a JSON object."""
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, not UTF-8/16/32, or absurdly nested
        return []
    if not isinstance(parsed, dict):
        return []
    candidates: list[object] = []
    actor = parsed.get("actor")
    if isinstance(actor, dict):
        candidates.append(actor.get("id"))
    candidates += [parsed.get(name) for name in PERSON_ID_FIELDS]
    for name in PERSON_LIST_FIELDS:
        value = parsed.get(name)
        if isinstance(value, list):
            candidates += value
    found = {c for c in candidates if isinstance(c, str) and _ID.fullmatch(c) is not None}
    found.discard(SYSTEM_ACTOR)
    return sorted(found)


def kept_part(data: bytes, limit: int = KEPT_PAYLOAD_BYTES) -> bytes:
    """The bytes of a payload a record keeps: all of it, or its first ``limit`` bytes cut
    back to a UTF-8 character boundary when the payload is UTF-8 text."""
    if len(data) <= limit:
        return data
    for cut in range(4):  # a UTF-8 character is at most 4 bytes long
        candidate = data[: limit - cut]
        try:
            candidate.decode("utf-8")
        except UnicodeDecodeError:
            continue
        return candidate
    return data[:limit]


def bounded(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters (with a mark that it was cut)."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def payload_text(data: bytes) -> tuple[str, str]:
    """The payload as text and its encoding: UTF-8 as it is, other bytes in base64."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


# -- sealing ----------------------------------------------------------------------------------


def _xor(first: bytes, *others: bytes) -> bytes:
    out = bytearray(first)
    for other in others:
        for i, byte in enumerate(other):
            out[i] ^= byte
    return bytes(out)


def _open(key: bytes | None, subject: str, sealed: str) -> bytes | None:
    """Opens what ``seal`` sealed, with ``key``; ``None`` if it cannot."""
    return open_sealed(None if key is None else AESGCM(key), subject, sealed)


def seal_payload(
    keys: SubjectKeys, rejection_id: UUID, text: str, persons: Sequence[str]
) -> dict[str, Any] | None:
    """The sealed envelope of a payload, readable only while the rejection's own key and
    every named person's key exist; ``None`` if one of them is forgotten already (or the
    payload names implausibly many people).

    The keys are expected to exist (``keys.ensure_keys`` for the batch); a missing one is
    made here.
    """
    if len(persons) > MAX_NAMED_PERSONS:
        return None
    subjects = [rejection_subject(rejection_id), *persons]
    subject_keys: list[bytes] = []
    for subject in subjects:
        key = keys.key_for_writing(subject)
        if key is None:
            return None
        subject_keys.append(key)
    data_key = os.urandom(KEY_BYTES)
    others = [os.urandom(KEY_BYTES) for _ in subjects[1:]]
    shares = [_xor(data_key, *others), *others]
    sealed = seal(_payload_label(rejection_id), data_key, text)
    return {
        "version": ENVELOPE_VERSION,
        "shares": [
            seal(subject, key, base64.b64encode(share).decode("ascii"))
            for subject, key, share in zip(subjects, subject_keys, shares, strict=True)
        ],
        "sealed": sealed["sealed"],
    }


def open_payload(keys: SubjectKeys, rejection_id: UUID, envelope: dict[str, Any]) -> str | None:
    """The payload text, or ``None`` once any of its subjects' keys is destroyed."""
    shares = []
    for share in envelope["shares"]:
        subject = share["subject"]
        opened = _open(keys.key_for_reading(subject), subject, share["sealed"])
        if opened is None:
            return None
        shares.append(base64.b64decode(opened))
    if not shares:
        return None
    plain = _open(_xor(*shares), _payload_label(rejection_id), envelope["sealed"])
    return None if plain is None else plain.decode()


def new_rejection(
    keys: SubjectKeys,
    *,
    ctx: CommandContext,
    delivery_key: str,
    school_id: str | None,
    command_type: str | None,
    command_id: str | None,
    subject: str,
    error_code: str,
    error_message: str,
    data: bytes,
) -> RejectedCommand:
    """The record of one refused delivery, its payload sealed and bounded (see the module
    docstring)."""
    rejection_id = RejectedCommand.create_id(delivery_key)
    persons = named_persons(data)
    kept = kept_part(data)
    text, encoding = payload_text(kept)
    return RejectedCommand(
        ctx=ctx,
        delivery_key=delivery_key,
        school_id=bounded(school_id, MAX_ID_CHARS),
        command_type=bounded(command_type, MAX_ID_CHARS),
        command_id=bounded(command_id, MAX_ID_CHARS),
        subject=subject,
        error_code=error_code,
        error_message=bounded(error_message, MAX_ERROR_MESSAGE) or "",
        payload=None,
        payload_encoding=encoding,
        sealed_payload=seal_payload(keys, rejection_id, text, persons),
        named_persons=persons,
        payload_size=len(data),
        payload_sha256=hashlib.sha256(data).hexdigest(),
        payload_truncated=len(kept) < len(data),
    )


def subjects_to_key(deliveries: Iterable[tuple[str, bytes]]) -> set[str]:
    """Every subject whose key sealing these (delivery key, payload) pairs needs."""
    subjects: set[str] = set()
    for delivery_key, data in deliveries:
        persons = named_persons(data)
        if len(persons) <= MAX_NAMED_PERSONS:
            subjects.add(rejection_subject(RejectedCommand.create_id(delivery_key)))
            subjects.update(persons)
    return subjects


# -- reading ----------------------------------------------------------------------------------


def read_payload(keys: SubjectKeys, state: dict[str, Any]) -> tuple[str, PayloadState]:
    """A ``RejectedCommand.Recorded`` event's payload for display, and its state:
    ``readable`` (opened), ``erased`` (a key is destroyed, or it was erased on arrival)
    or ``plain`` (a record kept before payloads were sealed)."""
    plain = state.get("payload")
    if plain is not None:
        return str(plain), "plain"
    envelope = state.get("sealed_payload")
    if not isinstance(envelope, dict):
        return ERASED, "erased"
    text = open_payload(keys, state["originator_id"], envelope)
    return (ERASED, "erased") if text is None else (text, "readable")


REJECTION_TOPIC: Final = f"{RejectedCommand.__module__}:{RejectedCommand.__qualname__}.Recorded"


def rejections_naming(
    app: Application[UUID], person_id: str, page_size: int = 1000
) -> Iterator[int]:
    """Log positions of the kept rejections whose payload names ``person_id`` (so that
    forgetting them makes it unreadable); the stored bytes are searched for the id first."""
    needles = {person_id.encode(), json.dumps(person_id)[1:-1].encode("ascii")}
    start = 1
    while page := app.recorder.select_notifications(start, page_size, topics=[REJECTION_TOPIC]):
        for notification in page:
            if not any(needle in notification.state for needle in needles):
                continue
            event: Any = app.mapper.to_domain_event(notification)
            if person_id in (getattr(event, "named_persons", None) or ()):
                yield notification.id
        if len(page) < page_size:
            return
        start = page[-1].id + 1
