"""The application service: typed commands in, recorded events (with positions) out.

``handle`` takes one command; ``handle_batch`` takes many and saves all their events in
one transaction, each command still accepted or refused on its own. Both are idempotent
by ``command_id``: the first answer, a refusal for a rule included, is the answer for
that id on every path. Both retry optimistic-concurrency conflicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper, Recording

from sferum_audit.application.personal_data_mapper import PersonalDataMapper
from sferum_audit.application.receipts import CommandIdReused, CommandReceipt, fingerprint_of
from sferum_audit.application.settings import Settings
from sferum_audit.application.store import APPLICATION_NAME, CommandContextAsDict, locate_events
from sferum_audit.application.subject_keys import SubjectKeys
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.base import AuditedAggregate
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import DomainError
from sferum_audit.domain.source import Source

if TYPE_CHECKING:  # the commands and their handlers load on the first command handled:
    # a command that only reads the log does not pay for them (see bench_cli_start.py)
    from sferum_audit.application.authentication import Authenticator
    from sferum_audit.application.commands import Command

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One stored event: which aggregate, which version, what kind, where in the log."""

    aggregate_id: str
    version: int
    type: str
    position: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "type": self.type,
            "position": self.position,
        }


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What happened to one command: recorded now, recorded before, or rejected.

    ``repeat`` marks a rejection that repeats the answer already given to this command id
    (same command, refused before): nothing about it is new, so callers that keep or
    publish rejections skip it. The answer itself (``as_dict``) is the first one.
    """

    command_id: str
    status: Literal["recorded", "duplicate", "rejected"]
    events: tuple[RecordedEvent, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    repeat: bool = False

    @property
    def accepted(self) -> bool:
        return self.status != "rejected"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"command_id": self.command_id, "status": self.status}
        if self.accepted:
            data["events"] = [event.as_dict() for event in self.events]
        else:
            data["error"] = {"code": self.error_code, "message": self.error_message}
        return data


@dataclass
class _Outcome:
    command: Command
    ctx: CommandContext | None = None  # made once, for the command's events and its receipt
    refs: list[tuple[UUID, int]] = field(default_factory=list)
    duplicate_of: list[tuple[UUID, int]] | None = None
    error: DomainError | None = None
    repeat: bool = False  # the error is the answer this command id was given before
    decided: bool = False  # the command was judged now (so its answer gets a receipt)


def event_type_of(topic: str) -> str:
    """``sferum_audit.domain.chat:Chat.ContentRemoved`` -> ``Chat.ContentRemoved``."""
    return topic.rsplit(":", 1)[-1]


def in_command_order(uow: UnitOfWork, outcomes: list[_Outcome]) -> list[AuditedAggregate.Event]:
    """The batch's new events in the order their commands came, so the global log reads as
    the story happened; within a command, in the order they were triggered."""
    pending: dict[tuple[UUID, int], AuditedAggregate.Event] = {
        (event.originator_id, event.originator_version): event  # type: ignore[misc]  # every event here is an AuditedAggregate.Event
        for aggregate in uow.aggregates()
        for event in aggregate.collect_events()
    }
    ordered: list[AuditedAggregate.Event] = []
    for outcome in outcomes:
        events = [pending[ref] for ref in outcome.refs]
        events.sort(key=_triggered_at)
        ordered.extend(events)
    if len(ordered) != len(pending):  # an event no command claims would be lost: refuse
        raise RuntimeError("the batch's events and its commands' changes disagree")
    return ordered


def _triggered_at(event: AuditedAggregate.Event) -> datetime:
    return event.timestamp


class AuditLog(Application[UUID]):
    """The system of record: every accepted command becomes immutable events."""

    name = APPLICATION_NAME
    conflict_retries = 5
    # Where it was built from (``bootstrap``): the erasure follow-up finds the data folder
    # (acts, snapshots, write-ahead logs) and the views here.
    settings: Settings | None = None
    clock_skew = timedelta(minutes=5)  # how far ahead of now an occurred_at may be

    def __init__(
        self,
        env: dict[str, str],
        subject_keys: SubjectKeys,
        authenticator: Authenticator | None = None,
    ) -> None:
        if authenticator is None:
            from sferum_audit.application.authentication import Authenticator

            authenticator = Authenticator()
        self.subject_keys = subject_keys
        self.authenticator = authenticator
        super().__init__(env=env)

    def close(self) -> None:
        """Closes the event store and the subject-key store's connections."""
        super().close()
        self.subject_keys.close()

    def construct_mapper(self) -> Mapper[UUID]:
        """Personal fields are sealed with their subject's key (see personal_data_mapper)."""
        self.personal_data = PersonalDataMapper(self.construct_transcoder(), self.subject_keys)
        return self.personal_data

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(CommandContextAsDict())

    def save_events(self, events: list[AuditedAggregate.Event]) -> list[Recording[UUID]]:
        """Stores already collected events in one transaction and tells the listeners.

        What ``save`` does for events, without its per-object protocol checks (costly on
        Python 3.11 when a batch holds thousands of events); this application takes no
        snapshots, so there are none to take.
        """
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        processing_event.events.extend(events)
        recordings = self._record(processing_event)
        self._notify(recordings)
        return recordings

    def source(self, source_id: str) -> Source | None:
        """The registered source of that id (revoked ones too), or ``None``."""
        try:
            source: Source = self.repository.get(Source.create_id(source_id))
        except AggregateNotFoundError:
            return None
        return source if isinstance(source, Source) else None

    # -- commands ---------------------------------------------------------------------------

    def handle(self, command: Command) -> CommandResult:
        """Records one command, or explains why not; the same command_id twice records once.

        A command that came with credentials (``authentication.vouched_command``: every
        entry point's) is recorded only if a registered source vouches for it, and its
        events name that source; one without is a trusted in-process caller's."""
        return self.handle_batch([command])[0]

    def handle_batch(self, commands: Sequence[Command]) -> list[CommandResult]:
        """Records many commands in one transaction; a refused command does not stop the rest."""
        for attempt in range(self.conflict_retries + 1):
            uow, outcomes = self._decide(commands)
            new_events = in_command_order(uow, outcomes)
            new_events.extend(self._receipts(outcomes))
            self.personal_data.prepare(new_events)
            try:
                recordings = self.save_events(new_events)
            except IntegrityError:
                if attempt == self.conflict_retries:
                    raise
                log.info("write conflict, retrying", attempt=attempt + 1, commands=len(commands))
                continue
            located = {
                (r.domain_event.originator_id, r.domain_event.originator_version): (
                    r.notification.id,
                    r.notification.topic,
                )
                for r in recordings
            }
            return self._results(outcomes, located)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _receipts(outcomes: list[_Outcome]) -> list[AuditedAggregate.Event]:
        """A receipt for every command decided now: its events, or its refusal."""
        receipts: list[AuditedAggregate.Event] = []
        given: set[str] = set()
        for o in outcomes:
            if not o.decided or o.command.command_id in given:
                continue
            given.add(o.command.command_id)
            ctx = o.ctx or o.command.context()
            command_id, command_type = o.command.command_id, o.command.type
            fingerprint = fingerprint_of(o.command)
            if o.error is None:
                events = [[str(a), str(v)] for a, v in o.refs]
                receipts.append(
                    CommandReceipt.receipt_event(ctx, command_id, command_type, fingerprint, events)
                )
            else:
                receipts.append(
                    CommandReceipt.refusal_event(
                        ctx, command_id, command_type, fingerprint, o.error
                    )
                )
        return receipts

    def first_occurred_at(self, command_id: str) -> datetime | None:
        """When the command first given this id occurred, if it was recorded or refused."""
        try:
            receipt: object = self.repository.get(CommandReceipt.create_id(command_id))
        except AggregateNotFoundError:
            return None
        return receipt.occurred_at if isinstance(receipt, CommandReceipt) else None

    def _decide(self, commands: Sequence[Command]) -> tuple[UnitOfWork, list[_Outcome]]:
        """Runs the commands against one working set; rebuilds it if a refusal left it dirty."""
        now = datetime.now(UTC)
        from sferum_audit.application.handlers import HANDLERS as handlers

        uow = UnitOfWork(self)
        outcomes: list[_Outcome] = []
        seen: dict[str, _Outcome] = {}
        for command in commands:
            outcome = _Outcome(command)
            outcomes.append(outcome)
            try:
                source_id = self._source_of(uow, command)
            except DomainError as error:
                outcome.error = error
                continue
            earlier = seen.get(command.command_id)
            if earlier is not None:
                if fingerprint_of(earlier.command) != fingerprint_of(command):
                    outcome.error = CommandIdReused(
                        f"command id {command.command_id} was used for a different command "
                        "earlier in this batch"
                    )
                elif earlier.error is not None:
                    outcome.error, outcome.repeat = earlier.error, True
                else:
                    outcome.duplicate_of = (
                        earlier.duplicate_of if earlier.duplicate_of is not None else earlier.refs
                    )
                continue
            seen[command.command_id] = outcome
            receipt = uow.find(CommandReceipt, CommandReceipt.create_id(command.command_id))
            if receipt is not None:
                try:
                    receipt.check_same_command(command)
                except DomainError as error:
                    outcome.error = error
                else:
                    outcome.error = receipt.refusal()
                    outcome.repeat = outcome.error is not None
                    if outcome.error is None:
                        outcome.duplicate_of = receipt.recorded()
                continue
            uow.begin_command()
            outcome.ctx = command.context(source_id)
            outcome.decided = True
            try:
                outcome.ctx.check_not_ahead(now, self.clock_skew)
                handlers[command.type](uow, command, outcome.ctx)
            except DomainError as error:
                outcome.error = error
                uow.undo_command()
                if uow.dirty:
                    log.warning("refused command had changed state; deciding batch again")
                    return self._decide_without(commands, command, error)
                continue
            outcome.refs = uow.changes_of_command()
        return uow, outcomes

    def _source_of(self, uow: UnitOfWork, command: Command) -> str | None:
        """The source that vouches for the command (sources registered, rotated or revoked
        earlier in the batch count), ``None`` for an in-process caller's, or the refusal."""
        credentials = command.credentials
        if credentials is None:
            return None
        return self.authenticator.authenticate(
            command,
            credentials,
            lambda source_id: uow.find(Source, Source.create_id(source_id)),
        )

    def _decide_without(
        self, commands: Sequence[Command], refused: Command, error: DomainError
    ) -> tuple[UnitOfWork, list[_Outcome]]:
        """Decides the batch again without a refused command that had changed state."""
        uow, outcomes = self._decide([c for c in commands if c is not refused])
        rest = iter(outcomes)
        ordered = [
            _Outcome(command, ctx=command.context(), error=error, decided=True)
            if command is refused
            else next(rest)
            for command in commands
        ]
        return uow, ordered

    def _results(
        self, outcomes: list[_Outcome], located: dict[tuple[UUID, int], tuple[int, str]]
    ) -> list[CommandResult]:
        missing = [
            ref for o in outcomes if o.duplicate_of for ref in o.duplicate_of if ref not in located
        ]
        located.update(locate_events(self.recorder, missing))
        results = []
        for o in outcomes:
            command_id = o.command.command_id
            if o.error is not None:
                results.append(
                    CommandResult(
                        command_id, "rejected", (), o.error.code, o.error.message, o.repeat
                    )
                )
                continue
            refs = o.duplicate_of if o.duplicate_of is not None else o.refs
            events = tuple(
                sorted(
                    (
                        RecordedEvent(
                            str(a), v, event_type_of(located[(a, v)][1]), located[(a, v)][0]
                        )
                        for a, v in refs
                    ),
                    key=lambda e: e.position,
                )
            )
            status: Literal["recorded", "duplicate"] = (
                "duplicate" if o.duplicate_of is not None else "recorded"
            )
            results.append(CommandResult(command_id, status, events))
        return results
