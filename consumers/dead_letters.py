"""The dead-letter stream: list what is in it, and put messages back for another try.

A dead letter keeps the original payload and headers, plus where it came from
(``Sferum-Original-Subject`` / ``-Stream`` / ``-Sequence``), how often it was delivered and
the last error. ``retry`` publishes it again on its command subject, with a new
``Nats-Msg-Id`` (``<command id>/retry/<dead-letter sequence>``: JetStream would drop the
original id within its duplicate window; the store still recognises the command id), and
deletes it from the dead-letter stream once the commands stream has confirmed it.

**Erasure reaches dead letters by deleting them.** A dead letter is a command that could
not be recorded, usually because the store was down; it keeps its payload in plain text,
and it cannot be sealed when it is dead-lettered, since the keys live in that store. So
forgetting a person (``forget`` or an erasure command over NATS) deletes, with ``purge_naming``,
every dead letter whose payload names them, at the places the command schema puts persons
(the same rule as for sealed rejections, ``application.rejections.named_persons``). A
payload that is not a JSON object names nobody and is left alone, as is personal data at an
unexpected place: the operator deletes those by hand (``retry`` or the stream's own tools).
A deleted dead letter is gone, not retried: the command it held is not recorded.

**Erasure reaches every stream the service keeps.** ``erase_naming`` (the erasure
follow-up's NATS step, ``application.erasure.finish_erasure``) deletes, with JetStream's
erasing delete (``STREAM.MSG.DELETE`` without ``no_erase``: the server overwrites the
stored bytes), every message still held that names the person: in the commands stream
(commands not yet acked), the dead-letter stream, and the rejections in the events
stream, whether by id at a person place or by one of the names they registered with in
any text (see ``domain.erasure.name_variants``). Where the commands stream then holds no
message at all, it is purged, which removes its block files and with them the bytes of
acked commands that retention had dropped but the file store had not yet overwritten.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import APIError, NotFoundError

from sferum_audit.application.erasure import ErasedMessage
from sferum_audit.application.rejections import named_persons
from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.subjects import Subjects, decode_token
from sferum_audit.domain.erasure import mentions

# JetStream's error code for deleting a message the stream no longer has.
NO_MESSAGE_FOUND = 10057

DLQ_HEADERS = {
    hdr.DLQ_SUBJECT,
    hdr.DLQ_STREAM,
    hdr.DLQ_SEQUENCE,
    hdr.DLQ_DELIVERIES,
    hdr.DLQ_ERROR,
    hdr.DLQ_FAILED_AT,
    hdr.DLQ_MSG_ID,
    hdr.MSG_ID,
}


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter stream."""

    sequence: int
    subject: str
    original_subject: str
    original_sequence: str
    deliveries: str
    error: str
    failed_at: str
    command_id: str
    headers: dict[str, str]
    data: bytes

    @classmethod
    def from_raw(cls, raw: RawStreamMsg) -> DeadLetter:
        headers = dict(raw.headers or {})
        return cls(
            sequence=int(raw.seq or 0),
            subject=raw.subject or "",
            original_subject=headers.get(hdr.DLQ_SUBJECT, ""),
            original_sequence=headers.get(hdr.DLQ_SEQUENCE, ""),
            deliveries=headers.get(hdr.DLQ_DELIVERIES, ""),
            error=headers.get(hdr.DLQ_ERROR, ""),
            failed_at=headers.get(hdr.DLQ_FAILED_AT, ""),
            command_id=hdr.command_id_of_msg_id(headers.get(hdr.DLQ_MSG_ID, "")),
            headers=headers,
            data=bytes(raw.data or b""),
        )

    def names(self, person_id: str) -> bool:
        """Whether the payload names ``person_id`` where the command schema puts persons
        (never, when it is not a JSON object)."""
        return person_id in named_persons(self.data)

    @property
    def school_id(self) -> str | None:
        tokens = self.original_subject.split(".")
        return decode_token(tokens[-2]) if len(tokens) >= 2 else None

    @property
    def command_type(self) -> str | None:
        tokens = self.original_subject.split(".")
        return decode_token(tokens[-1]) if tokens and tokens[-1] else None

    def row(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "failed_at": self.failed_at,
            "school_id": self.school_id,
            "command_type": self.command_type,
            "command_id": self.command_id,
            "deliveries": self.deliveries,
            "error": self.error,
            "original_sequence": self.original_sequence,
            "payload": self.data.decode("utf-8", errors="replace"),
        }


async def dead_letters(
    js: JetStreamContext, settings: PipelineSettings, *, limit: int | None = None
) -> list[DeadLetter]:
    """The dead letters, oldest first."""
    stream = settings.dead_letter_stream
    wildcard = Subjects(settings.subject_prefix).dead_letters_wildcard
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    found: list[DeadLetter] = []
    sequence = info.state.first_seq or 1
    while sequence <= (info.state.last_seq or 0):
        if limit is not None and len(found) >= limit:
            break
        try:
            raw = await js.get_msg(stream, sequence, subject=wildcard, next=True)
        except NotFoundError:
            break
        letter = DeadLetter.from_raw(raw)
        found.append(letter)
        sequence = letter.sequence + 1
    return found


def retry_subject(settings: PipelineSettings, letter: DeadLetter) -> str:
    """The command subject to publish a dead letter on again (from its stored subject)."""
    tokens = letter.original_subject.split(".")
    school, command_type = (tokens[-2], tokens[-1]) if len(tokens) >= 2 else ("_", "_")
    return f"{Subjects(settings.subject_prefix).prefix}.commands.{school}.{command_type}"


def retry_headers(letter: DeadLetter) -> dict[str, str]:
    headers = {k: v for k, v in letter.headers.items() if k not in DLQ_HEADERS}
    original = letter.command_id or f"dead-{letter.sequence}"
    headers[hdr.MSG_ID] = f"{original}/retry/{letter.sequence}"
    return headers


async def retry(
    js: JetStreamContext, settings: PipelineSettings, letters: Iterable[DeadLetter]
) -> list[tuple[DeadLetter, int]]:
    """Publishes each dead letter again and then deletes it from the dead-letter stream;
    returns each with its new sequence in the commands stream."""
    done: list[tuple[DeadLetter, int]] = []
    for letter in letters:
        ack = await js.publish(
            retry_subject(settings, letter),
            letter.data,
            headers=retry_headers(letter),
            stream=settings.commands_stream,
        )
        await js.delete_msg(settings.dead_letter_stream, letter.sequence)
        done.append((letter, ack.seq))
    return done


async def purge_naming(
    js: JetStreamContext, settings: PipelineSettings, person_id: str
) -> list[int]:
    """Deletes from the dead-letter stream every dead letter whose payload names
    ``person_id`` (see the module docstring) and returns their sequences, oldest first.

    Every dead letter is read and parsed: a search of the bytes alone could miss an id
    written with JSON escapes. One already gone (retried or purged meanwhile) is skipped;
    running it again deletes nothing more.
    """
    deleted: list[int] = []
    for letter in await dead_letters(js, settings):
        if not letter.names(person_id):
            continue
        try:
            await js.delete_msg(settings.dead_letter_stream, letter.sequence)
        except APIError as error:
            if error.err_code != NO_MESSAGE_FOUND:
                raise
            continue
        deleted.append(letter.sequence)
    return deleted


def message_names(data: bytes, person_id: str, variants: Sequence[str]) -> bool:
    """Whether a stored message names the person: their id at a person place of a JSON
    command, or one of their names anywhere in its text (JSON escapes undone)."""
    if person_id in named_persons(data):
        return True
    if not variants:
        return False
    text = data.decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError):
        text += "\n" + json.dumps(json.loads(data), ensure_ascii=False)
    return mentions(text, variants)


async def _stream_messages(
    js: JetStreamContext, stream: str, subject: str | None
) -> AsyncIterator[RawStreamMsg]:
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return
    sequence = info.state.first_seq or 1
    while sequence <= (info.state.last_seq or 0):
        try:
            raw = await js.get_msg(stream, sequence, subject=subject, next=True)
        except NotFoundError:
            return
        yield raw
        sequence = int(raw.seq or sequence) + 1


async def erase_naming(
    js: JetStreamContext, settings: PipelineSettings, person_id: str, variants: Sequence[str]
) -> list[ErasedMessage]:
    """Erases every message the service's streams still hold that names the person (see
    the module docstring); returns them, stream by stream, oldest first."""
    subjects = Subjects(settings.subject_prefix)
    places: list[tuple[str, str | None]] = [
        (settings.commands_stream, None),
        (settings.dead_letter_stream, None),
        (settings.events_stream, subjects.rejections_wildcard),
    ]
    erased: list[ErasedMessage] = []
    for stream, subject in places:
        async for raw in _stream_messages(js, stream, subject):
            if not message_names(bytes(raw.data or b""), person_id, variants):
                continue
            if stream == settings.commands_stream and _is_erasure(raw):
                continue  # the erasure itself (ids only): its ack removes it, or it is retried
            try:
                await js.delete_msg(stream, int(raw.seq or 0))
            except APIError as error:
                if error.err_code != NO_MESSAGE_FOUND:
                    raise
                continue
            erased.append(ErasedMessage(stream, int(raw.seq or 0), raw.subject or ""))
    return erased


def _is_erasure(raw: RawStreamMsg) -> bool:
    return (raw.subject or "").endswith(".erase-personal-data")


async def _drop_acked_blocks(js: JetStreamContext, stream: str) -> None:
    """Purges what the commands stream has already removed, when it holds nothing: its
    retention removed every acked command, but the file store overwrites removed bytes
    only when it rewrites a block; a purge deletes the blocks. Purging below the last
    sequence seen never touches a command published meanwhile."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return
    if not info.state.messages and info.state.last_seq:
        await js.purge_stream(stream, seq=info.state.last_seq + 1)


class StreamEraser:
    """``application.erasure.MessageEraser`` over a JetStream connection."""

    def __init__(self, js: JetStreamContext, settings: PipelineSettings) -> None:
        self.js = js
        self.settings = settings

    async def erase_naming(self, person_id: str, variants: Sequence[str]) -> list[ErasedMessage]:
        return await erase_naming(self.js, self.settings, person_id, variants)

    async def drop_erasure(self, command_id: str) -> list[ErasedMessage]:
        stream = self.settings.commands_stream
        erased = []
        async for raw in _stream_messages(self.js, stream, None):
            if _is_erasure(raw) and (raw.headers or {}).get(hdr.MSG_ID) == command_id:
                with contextlib.suppress(NotFoundError):
                    await self.js.delete_msg(stream, int(raw.seq or 0))
                    erased.append(ErasedMessage(stream, int(raw.seq or 0), raw.subject or ""))
        await _drop_acked_blocks(self.js, stream)
        return erased
