"""Stores each personal field encrypted with its data subject's key (AES-256-GCM).

Applied between the domain event and the stored bytes, so the domain keeps plain strings
and the views need no crypto. A stored personal field is ``{"subject": ..., "sealed":
base64(nonce || ciphertext)}``; reading it back gives the text, or ``[erased]`` once the
subject's key is destroyed. The subject id is bound into the ciphertext as associated
data, so a sealed value cannot be moved to another person.

Free text (every personal field but a name: reasons, excerpts, descriptions, notes) may
name other people too. It is sealed under two keys at once: the subject's and its own
record's (``{"subject", "text": "text/<aggregate id>/<version>", "sealed"}``; the AES key
is the XOR of the two, both subjects bound as associated data). Destroying either key
makes it unreadable, so erasing a person destroys the text keys of exactly the records
whose text names them (``application.free_text``), and no stored byte changes. Values
stored before this have no ``text`` part and open with the subject's key alone.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder

from sferum_audit.application.subject_keys import SubjectKeys
from sferum_audit.domain.personal_data import (
    ERASED,
    NAME_FIELDS,
    PERSONAL_FIELDS,
    PersonalFields,
    text_subject,
)

NONCE_BYTES = 12


def seal(subject: str, key: bytes, text: str) -> dict[str, str]:
    """``text`` sealed with ``key``, bound to ``subject`` (see the module docstring)."""
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, text.encode(), subject.encode())
    return {"subject": subject, "sealed": base64.b64encode(nonce + ciphertext).decode()}


def open_sealed(cipher: AESGCM | None, subject: str, sealed: str) -> bytes | None:
    """The plain bytes of a ``seal``'s ``sealed`` part, or ``None`` when there is no cipher
    (the key was destroyed) or it does not open (a wrong key, or another subject)."""
    if cipher is None:
        return None
    raw = base64.b64decode(sealed)
    try:
        return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], subject.encode())
    except InvalidTag:
        return None


def seal_text(
    subject: str, key: bytes, text_subject: str, text_key: bytes, text: str
) -> dict[str, str]:
    """Free ``text`` sealed under both keys (see the module docstring)."""
    nonce = os.urandom(NONCE_BYTES)
    combined = bytes(a ^ b for a, b in zip(key, text_key, strict=True))
    aad = f"{subject}\n{text_subject}".encode()
    ciphertext = AESGCM(combined).encrypt(nonce, text.encode(), aad)
    return {
        "subject": subject,
        "text": text_subject,
        "sealed": base64.b64encode(nonce + ciphertext).decode(),
    }


def open_text(key: bytes | None, text_key: bytes | None, sealed: dict[str, str]) -> bytes | None:
    """The plain bytes of a ``seal_text`` value, or ``None`` once either key is gone."""
    if key is None or text_key is None:
        return None
    combined = bytes(a ^ b for a, b in zip(key, text_key, strict=True))
    return open_sealed(AESGCM(combined), f"{sealed['subject']}\n{sealed['text']}", sealed["sealed"])


def event_type(topic_or_qualname: str) -> str:
    return topic_or_qualname.rsplit(":", 1)[-1]


class PersonalDataMapper(Mapper[UUID]):
    """A ``Mapper`` that seals personal fields on the way in and opens them on the way out."""

    def __init__(self, transcoder: Transcoder, keys: SubjectKeys) -> None:
        super().__init__(transcoder)
        self._keys = keys

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        spec = PERSONAL_FIELDS.get(type(domain_event).__qualname__)
        if spec is None:
            return super().to_stored_event(domain_event)
        sealed = self._sealed_copy(domain_event, spec)
        return super().to_stored_event(sealed)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        domain_event = super().to_domain_event(stored_event)
        spec = PERSONAL_FIELDS.get(event_type(stored_event.topic))
        if spec is not None:
            state = vars(domain_event)
            for name in spec.fields:
                value = state.get(name)
                if isinstance(value, dict) and "sealed" in value:
                    state[name] = self._open(value)
        return domain_event

    def prepare(self, domain_events: Iterable[DomainEventProtocol[UUID]]) -> None:
        """Creates, in one transaction, the keys of every subject these events name (and
        forgets, first, the keys other processes destroyed meanwhile)."""
        self._keys.refresh_forgotten()
        subjects = set()
        for domain_event in domain_events:
            spec = PERSONAL_FIELDS.get(type(domain_event).__qualname__)
            if spec is not None:
                state = vars(domain_event)
                if any(state.get(name) is not None for name in spec.fields):
                    subjects.add(str(state[spec.subject_field]))
                if any(state.get(name) is not None for name in _free_text(spec)):
                    subjects.add(_text_subject_of(domain_event))
        self._keys.ensure_keys(subjects)

    # -- sealing ------------------------------------------------------------------------------

    def _sealed_copy(
        self, domain_event: DomainEventProtocol[UUID], spec: PersonalFields
    ) -> DomainEventProtocol[UUID]:
        state: dict[str, Any] = dict(vars(domain_event))
        subject = str(state[spec.subject_field])
        key = text_key = None
        text = _text_subject_of(domain_event)
        for name in spec.fields:
            value = state.get(name)
            if value is None or value == ERASED:
                continue
            key = key or self._keys.key_for_writing(subject)
            if name in NAME_FIELDS:
                state[name] = seal(subject, key, str(value)) if key else ERASED
                continue
            text_key = text_key or self._keys.key_for_writing(text)
            state[name] = (
                seal_text(subject, key, text, text_key, str(value)) if key and text_key else ERASED
            )
        copy = object.__new__(type(domain_event))
        object.__setattr__(copy, "__dict__", state)
        return copy

    def _open(self, sealed: dict[str, str]) -> str:
        subject = sealed["subject"]
        key = self._keys.key_for_reading(subject)
        if "text" in sealed:
            text_key = None if key is None else self._keys.key_for_reading(sealed["text"])
            plain = open_text(key, text_key, sealed)
        else:
            plain = open_sealed(None if key is None else AESGCM(key), subject, sealed["sealed"])
        return ERASED if plain is None else plain.decode()


def _free_text(spec: PersonalFields) -> tuple[str, ...]:
    return tuple(name for name in spec.fields if name not in NAME_FIELDS)


def _text_subject_of(domain_event: DomainEventProtocol[UUID]) -> str:
    return text_subject(domain_event.originator_id, domain_event.originator_version)
