"""The command schema: one JSON object per command, the same for the CLI and for NATS.

Every command has the envelope fields (``command_id``, ``type``, ``school_id``, ``actor``,
``occurred_at``, optional ``correlation_id``/``causation_id``) and the fields of its type.
``parse_command`` turns raw input into a typed command or a ``CommandRejected`` with a
readable message and a stable code; nothing else in the service sees untyped input, and no
input makes it raise anything else.

**Limits** (``CommandLimits``, configurable; README "Commands: the input schema"): input
larger than ``max_bytes`` is refused as ``command-too-large`` before it is read; JSON nested
deeper than ``max_depth`` as ``command-too-deep``; an integer longer than
``max_number_digits`` digits as ``number-too-long``. Bytes that are not JSON are
``invalid-json``, JSON that is not a command ``invalid-command``. A valid command nests
three levels at most and holds no long numbers, so the depth and number limits are checked
only for input the schema refuses, with pydantic-core's parser (it has its own depth and
number ceilings, 200 levels and 4,300 digits, and never raises ``RecursionError``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import pydantic_core
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
)

from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import DomainError

if TYPE_CHECKING:
    from sferum_audit.application.authentication import Credentials

Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")]
Text = Annotated[str, Field(min_length=1)]

# An ISO 8601 / RFC 3339 date-time with its timezone, as a string: never a number or a
# numeric string (pydantic would read those as seconds since 1970).
MOMENT_PATTERN: Final = (
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})$"
)
_MOMENT = re.compile(MOMENT_PATTERN)


def _moment_text(value: object) -> object:
    """Lets through a datetime (built in Python) or an ISO 8601 string with a timezone."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _MOMENT.match(value):
        return value
    raise ValueError(
        "must be an ISO 8601 date-time string with a timezone, e.g. 2024-12-02T10:15:00+02:00"
    )


Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_moment_text),
    Field(
        json_schema_extra={
            "pattern": MOMENT_PATTERN,
            "description": "ISO 8601 date-time with a timezone, as a string",
        }
    ),
]


# The longest reason a refusal keeps: the validator quotes bad values whole, and the
# reason travels in the rejection record, its log line and the outbound stream.
MAX_REFUSAL_CHARS: Final = 2000


class CommandRejected(DomainError):
    """The input is not a valid command: bad JSON or a schema violation."""

    code = "invalid-command"

    def __init__(self, message: str, code: str = "invalid-command") -> None:
        if len(message) > MAX_REFUSAL_CHARS:  # parsers quote the input; keep records small
            message = message[: MAX_REFUSAL_CHARS - 1] + "…"
        super().__init__(message)
        self.code = code


class Actor(BaseModel):
    """Who sends the command and in which role; the domain verifies the role."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id
    role: Literal[
        "school-administration",
        "administrator",
        "teacher",
        "class-teacher",
        "student",
        "parent",
        "security-officer",
        "system",
    ]


class CommandBase(BaseModel):
    """The envelope every command shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    command_id: Id
    correlation_id: Id | None = None
    causation_id: Id | None = None
    school_id: Id
    actor: Actor
    occurred_at: Moment

    # The bytes and signature the command arrived with (see ``authentication``); set by
    # ``authentication.vouched_command``, never by the payload. ``None``: a trusted
    # in-process caller, whose commands are not authenticated.
    _credentials: Any = PrivateAttr(default=None)

    @property
    def credentials(self) -> Credentials | None:
        credentials: Credentials | None = self._credentials
        return credentials

    def context(self, source_id: str | None = None) -> CommandContext:
        """The provenance the domain stores on every event this command causes."""
        return CommandContext(
            actor_id=self.actor.id,
            actor_role=self.actor.role,
            occurred_at=self.occurred_at,
            command_id=self.command_id,
            correlation_id=self.correlation_id or self.command_id,
            causation_id=self.causation_id,
            source_id=source_id,
        )


# -- school (2.2, 2.3) ---------------------------------------------------------------------


class RegisterSchool(CommandBase):
    type: Literal["register-school"]
    name: Text
    order_ref: Text
    first_administrator_id: Id


class AppointAdministrator(CommandBase):
    type: Literal["appoint-administrator"]
    person_id: Id
    order_ref: Text


class RemoveAdministrator(CommandBase):
    type: Literal["remove-administrator"]
    person_id: Id
    reason: Text


class CreateClass(CommandBase):
    type: Literal["create-class"]
    class_id: Id
    name: Text


class AssignClassTeacher(CommandBase):
    type: Literal["assign-class-teacher"]
    class_id: Id
    teacher_id: Id


class ReleaseClassTeacher(CommandBase):
    type: Literal["release-class-teacher"]
    class_id: Id


class AdmitPerson(CommandBase):
    type: Literal["admit-person"]
    person_id: Id
    roster_role: Literal["student", "staff"]
    class_id: Id | None = None


class TransferStudent(CommandBase):
    type: Literal["transfer-student"]
    person_id: Id
    to_class_id: Id


class RecordDeparture(CommandBase):
    type: Literal["record-departure"]
    person_id: Id
    reason: Text


# -- profiles and account links --------------------------------------------------------------


class RegisterProfile(CommandBase):
    type: Literal["register-profile"]
    profile_id: Id
    role: Literal["teacher", "student", "parent", "security-officer"]
    display_name: Text
    children: list[Id] = Field(default_factory=list)


class LinkAccount(CommandBase):
    type: Literal["link-account"]
    profile_id: Id
    elzhur_account_id: Id


class UnlinkAccount(CommandBase):
    type: Literal["unlink-account"]
    profile_id: Id
    reason: Text


# -- chats -------------------------------------------------------------------------------------


class CreateChat(CommandBase):
    type: Literal["create-chat"]
    chat_id: Id
    kind: Literal["subject", "free"]
    title: Text
    class_id: Id | None = None
    subject: str | None = None
    purpose: str | None = None


class AppointChatModerator(CommandBase):
    type: Literal["appoint-chat-moderator"]
    chat_id: Id
    profile_id: Id


class RemoveChatModerator(CommandBase):
    type: Literal["remove-chat-moderator"]
    chat_id: Id
    profile_id: Id


class ArchiveChat(CommandBase):
    type: Literal["archive-chat"]
    chat_id: Id
    reason: Text


class AddMember(CommandBase):
    type: Literal["add-member"]
    chat_id: Id
    profile_id: Id
    via: Literal["account-link", "added"] = "added"


class LeaveChat(CommandBase):
    type: Literal["leave-chat"]
    chat_id: Id


class RemoveMember(CommandBase):
    type: Literal["remove-member"]
    chat_id: Id
    profile_id: Id
    reason: Text


# -- invitations ---------------------------------------------------------------------------------


class IssueInvitation(CommandBase):
    type: Literal["issue-invitation"]
    invitation_id: Id
    chat_id: Id
    role: Literal["teacher", "student", "parent", "administrator"]
    expires_at: Moment


class RedeemInvitation(CommandBase):
    type: Literal["redeem-invitation"]
    invitation_id: Id


class AnnulInvitation(CommandBase):
    type: Literal["annul-invitation"]
    invitation_id: Id
    reason: Text


class ExpireInvitation(CommandBase):
    type: Literal["expire-invitation"]
    invitation_id: Id


# -- moderation --------------------------------------------------------------------------------

Authority = Literal["2.3", "2.4", "2.5"]
Ground = Literal["4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.5", "4.2.6", "law", "third-party-rights"]
Reason = Annotated[str, Field(min_length=1, max_length=1000)]


class ContentAction(CommandBase):
    chat_id: Id
    authority: Authority
    ground: Ground
    message_id: Id
    author_id: Id
    reason: Reason
    excerpt: str | None = Field(default=None, max_length=2000)


class RemoveContent(ContentAction):
    type: Literal["remove-content"]


class BlockContent(ContentAction):
    type: Literal["block-content"]


class BlockMember(CommandBase):
    type: Literal["block-member"]
    chat_id: Id
    authority: Authority
    ground: Ground
    member_id: Id
    reason: Reason


class UnblockMember(CommandBase):
    type: Literal["unblock-member"]
    chat_id: Id
    authority: Authority
    member_id: Id
    reason: Reason


class WarnAboutLiability(CommandBase):
    type: Literal["warn-about-liability"]
    chat_id: Id
    authority: Authority
    ground: Ground
    member_id: Id
    reason: Reason


# -- unauthorised access (4.2.2) ----------------------------------------------------------------


class ReportUnauthorisedAccess(CommandBase):
    type: Literal["report-unauthorised-access"]
    incident_id: Id
    affected_profile_id: Id
    elzhur_account_id: Id | None = None
    noticed_at: Moment
    how_noticed: Text
    description: Text
    told: dict[Literal["school-administrator", "platform-operator"], Moment] = Field(
        default_factory=dict
    )


class RecordNotification(CommandBase):
    type: Literal["record-notification"]
    incident_id: Id
    party: Literal["school-administrator", "platform-operator"]
    told_at: Moment


class AcknowledgeIncident(CommandBase):
    type: Literal["acknowledge-incident"]
    incident_id: Id


class TakeContainmentStep(CommandBase):
    type: Literal["take-containment-step"]
    incident_id: Id
    step: Literal[
        "sessions-revoked", "account-link-removed", "invitations-annulled", "password-reset"
    ]
    note: Text


class ResolveIncident(CommandBase):
    type: Literal["resolve-incident"]
    incident_id: Id
    findings: Text


class DismissIncident(CommandBase):
    type: Literal["dismiss-incident"]
    incident_id: Id
    findings: Text


# -- command sources (who may sign commands for the school) -----------------------------------


class RegisterSource(CommandBase):
    type: Literal["register-source"]
    source_id: Id
    kind: Literal["integration", "person"]
    person_id: Id | None = None
    public_key: Annotated[str, Field(min_length=1, max_length=200)]


class RotateSource(CommandBase):
    type: Literal["rotate-source"]
    source_id: Id
    public_key: Annotated[str, Field(min_length=1, max_length=200)]


class RevokeSource(CommandBase):
    type: Literal["revoke-source"]
    source_id: Id
    reason: Text


# -- erasure of personal data (152-FZ) ------------------------------------------------------


class ErasePersonalData(CommandBase):
    type: Literal["erase-personal-data"]
    erasure_id: Id
    subject_id: Id
    requested_by: Id
    basis: Annotated[str, Field(min_length=1, max_length=500)]


Command = Annotated[
    RegisterSchool
    | AppointAdministrator
    | RemoveAdministrator
    | CreateClass
    | AssignClassTeacher
    | ReleaseClassTeacher
    | AdmitPerson
    | TransferStudent
    | RecordDeparture
    | RegisterProfile
    | LinkAccount
    | UnlinkAccount
    | CreateChat
    | AppointChatModerator
    | RemoveChatModerator
    | ArchiveChat
    | AddMember
    | LeaveChat
    | RemoveMember
    | IssueInvitation
    | RedeemInvitation
    | AnnulInvitation
    | ExpireInvitation
    | RemoveContent
    | BlockContent
    | BlockMember
    | UnblockMember
    | WarnAboutLiability
    | ReportUnauthorisedAccess
    | RecordNotification
    | AcknowledgeIncident
    | TakeContainmentStep
    | ResolveIncident
    | DismissIncident
    | ErasePersonalData
    | RegisterSource
    | RotateSource
    | RevokeSource,
    Field(discriminator="type"),
]

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)

# Where commands name persons (profile ids): fields holding one id, and fields holding a
# list of them. The ingest reads these persons' profiles ahead; a refused payload is
# sealed under their keys.
PERSON_ID_FIELDS: Final = (
    "profile_id",
    "person_id",
    "teacher_id",
    "member_id",
    "author_id",
    "affected_profile_id",
    "requested_by",
    "subject_id",
    "first_administrator_id",
)
PERSON_LIST_FIELDS: Final = ("children",)
COMMAND_TYPES: tuple[str, ...] = tuple(
    sorted(
        model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]  # each is a Literal
        for model in CommandBase.__subclasses__() + ContentAction.__subclasses__()
        if "type" in model.model_fields
    )
)


@dataclass(frozen=True, slots=True)
class CommandLimits:
    """How large, deep and long-numbered a command's JSON may be (see the module docstring)."""

    max_bytes: int = 262_144
    max_depth: int = 32
    max_number_digits: int = 100


DEFAULT_LIMITS: Final = CommandLimits()
# The ceilings of pydantic-core's JSON parser: a limit above them is reported at them.
PARSER_MAX_DEPTH: Final = 200
PARSER_MAX_DIGITS: Final = 4300


def parse_command(
    raw: str | bytes | dict[str, Any], limits: CommandLimits = DEFAULT_LIMITS
) -> Command:
    """A typed command from JSON text or a decoded object, or ``CommandRejected``."""
    try:
        return _parse(raw, limits)
    except CommandRejected:
        raise
    except Exception as error:  # a last guard: one input's fault is its own alone
        raise CommandRejected(f"not a command: {type(error).__name__}: {error}"[:500]) from None


def _parse(raw: str | bytes | dict[str, Any], limits: CommandLimits) -> Command:
    if isinstance(raw, str | bytes):
        check_size(raw, limits)
        if _NUL_ESCAPE not in (raw.encode("utf-8", "replace") if isinstance(raw, str) else raw):
            try:
                # The common case in one step, parsed and validated by pydantic-core.
                return COMMAND_ADAPTER.validate_json(raw)
            except ValidationError:
                pass  # explained below, in the same words as for a decoded object
        data = read_json(raw, limits)
    else:
        data = raw
        check_shape(data, limits)
    if not isinstance(data, dict):
        raise CommandRejected("a command is a JSON object")
    try:
        return COMMAND_ADAPTER.validate_python(data)
    except ValidationError as error:
        raise CommandRejected(describe_validation_error(error)) from None


# JSON can only carry U+0000 as this escape (a raw NUL byte is not JSON); input holding it
# (or an escaped backslash before "u0000") takes the slow path, which looks at every text.
_NUL_ESCAPE: Final = b"\\u0000"


def check_size(raw: str | bytes, limits: CommandLimits) -> None:
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "replace"))
    if size > limits.max_bytes:
        raise CommandRejected(
            f"the command is {size} bytes; at most {limits.max_bytes} are accepted",
            code="command-too-large",
        )


def read_json(raw: str | bytes, limits: CommandLimits = DEFAULT_LIMITS) -> Any:
    """Any JSON value within the limits, or ``CommandRejected`` (never another error)."""
    check_size(raw, limits)
    if isinstance(raw, bytes) and (encoding := json.detect_encoding(raw)) != "utf-8":
        try:  # a byte order mark, or UTF-16/32, as json.loads reads them
            raw = raw.decode(encoding)
        except UnicodeDecodeError as error:
            raise CommandRejected(f"not valid JSON: {error}", code="invalid-json") from None
    try:
        data = pydantic_core.from_json(raw)
    except ValueError as error:
        raise _parser_refusal(str(error), limits) from None
    except RecursionError:  # pragma: no cover  # pydantic-core stops at its own depth
        raise _too_deep(limits) from None
    check_shape(data, limits)
    return data


def _parser_refusal(message: str, limits: CommandLimits) -> CommandRejected:
    if message.startswith("recursion limit exceeded"):
        return _too_deep(limits)
    if message.startswith("number out of range"):
        return _too_long(limits)
    return CommandRejected(f"not valid JSON: {message}", code="invalid-json")


def _too_deep(limits: CommandLimits) -> CommandRejected:
    depth = min(limits.max_depth, PARSER_MAX_DEPTH)
    return CommandRejected(
        f"the JSON is nested more than {depth} levels deep", code="command-too-deep"
    )


def _too_long(limits: CommandLimits) -> CommandRejected:
    digits = min(limits.max_number_digits, PARSER_MAX_DIGITS)
    return CommandRejected(f"a number has more than {digits} digits", code="number-too-long")


def check_shape(data: Any, limits: CommandLimits) -> None:
    """Depth, integer sizes and NUL characters of a decoded value, without recursion."""
    ceiling = 10**limits.max_number_digits
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limits.max_depth:
                raise _too_deep(limits)
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(value, str) and "\x00" in value:
            # PostgreSQL's text columns cannot hold U+0000: recorded, it would stop the
            # views for good; quoted in a refusal, the refusal could not be shown.
            raise CommandRejected(
                "a text holds the character U+0000 (NUL), which no field may contain"
            )
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= ceiling:
            raise _too_long(limits)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad field, for a person to read."""
    parts = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(p) for p in problem["loc"]) or "command"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


def command_json_schema() -> dict[str, Any]:
    """The JSON Schema of every command, for the README and for publishers."""
    return COMMAND_ADAPTER.json_schema()
