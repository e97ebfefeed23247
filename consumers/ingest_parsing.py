"""Reading one pulled message: where it came from, and the command it holds or why not.

``read_delivery`` never raises: whatever the bytes, the message becomes a ``Delivery``
holding either a typed command or a ``CommandRejected`` (code and reason), so a malformed
message is refused on its own and never takes its batch down. The limits on size, depth
and number length are ``application.commands.CommandLimits``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.errors import NotJSMessageError

from sferum_audit.application.authentication import signature_from_headers, vouched_command
from sferum_audit.application.commands import Command, CommandLimits, CommandRejected
from sferum_audit.application.service import CommandResult
from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.subjects import Subjects


@dataclass
class Delivery:
    """One message of a batch as the ingest sees it."""

    msg: Msg
    index: int
    stream: str | None
    sequence: int | None
    deliveries: int
    stored_at: datetime | None
    key: str
    school_id: str | None
    command_type: str | None
    command: Command | None = None
    rejection: CommandRejected | None = None
    result: CommandResult | None = None
    failure: BaseException | None = None
    # Tries that failed while this process held the message (it was not redelivered).
    held_tries: int = 0

    @property
    def headers(self) -> dict[str, str]:
        return self.msg.headers or {}

    @property
    def command_id(self) -> str | None:
        if self.command is not None:
            return self.command.command_id
        msg_id = self.headers.get(hdr.MSG_ID)
        return None if msg_id is None else hdr.command_id_of_msg_id(msg_id)

    @property
    def tries(self) -> int:
        """Failed tries so far: JetStream's deliveries plus the retries held here."""
        return self.deliveries + self.held_tries

    def undecided(self) -> None:
        """Forgets the outcome of a try, before the message is tried again."""
        self.result = None
        self.failure = None


def read_delivery(
    index: int, msg: Msg, subjects: Subjects, stream_key: str, limits: CommandLimits
) -> Delivery:
    """The delivery of one message: its command, or the refusal of its bytes."""
    stream = sequence = stored_at = None
    deliveries = 1
    try:
        metadata = msg.metadata
    except NotJSMessageError:
        digest = hashlib.sha256(msg.subject.encode() + b"\0" + msg.data).hexdigest()[:32]
        key = f"memory/{(msg.headers or {}).get(hdr.MSG_ID, '')[:200]}/{digest}"
    else:
        stream, sequence = metadata.stream, metadata.sequence.stream
        deliveries, stored_at = metadata.num_delivered, metadata.timestamp
        key = f"{stream_key}/{sequence}"
    school_id, command_type = subjects.split_stored(msg.subject)
    delivery = Delivery(
        msg, index, stream, sequence, deliveries, stored_at, key, school_id, command_type
    )
    try:
        # The signature is checked when the command is decided (application layer); a
        # refusal there flows into the kept rejections like any other.
        received_at = stored_at or datetime.now(UTC)
        signature = signature_from_headers(msg.headers)
        command = vouched_command(msg.data, signature, received_at, limits)
    except CommandRejected as error:
        delivery.rejection = error
        return delivery
    mismatch = subject_mismatch(delivery, command)
    if mismatch:
        delivery.rejection = CommandRejected(mismatch, code="subject-mismatch")
        delivery.school_id, delivery.command_type = command.school_id, command.type
        return delivery
    delivery.command = command
    delivery.school_id, delivery.command_type = command.school_id, command.type
    return delivery


def subject_mismatch(delivery: Delivery, command: Command) -> str | None:
    """A command must travel on its own school's and type's subject: the partition, and so
    the order of the school's commands, is chosen by the subject."""
    if delivery.school_id is not None and delivery.school_id != command.school_id:
        return (
            f"published for school {delivery.school_id!r} but the command is for "
            f"school {command.school_id!r}"
        )
    if delivery.command_type is not None and delivery.command_type != command.type:
        return f"published as {delivery.command_type!r} but the command is a {command.type!r}"
    return None


def partition_of_batch(messages: list[Msg] | tuple[Msg, ...]) -> int | None:
    """The partition a batch was pulled from (stored subjects are
    ``<prefix>.ingest.<partition>.<school>.<type>``), or ``None`` for other subjects."""
    if not messages:
        return None
    tokens = messages[0].subject.split(".")
    if len(tokens) >= 5 and tokens[-4] == "ingest" and tokens[-3].isdigit():
        return int(tokens[-3])
    return None
