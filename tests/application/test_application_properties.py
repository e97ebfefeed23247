"""Property-based: random command sequences over a small school never crash with anything
but a domain error, and the recorded log never breaks an invariant of the regulation.

Each example gets a fresh SQLite store. After the sequence, a fresh ``AuditLog`` on the same
store replays the whole log event by event; the rules are re-checked from the replayed state
at each event (with an oracle written from docs/regulation.md, not with the domain's own code),
and the final state is checked against the invariants.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sferum_app_builder import T0

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import ErasePersonalData, parse_command
from sferum_audit.application.erasure import erase
from sferum_audit.application.receipts import CommandReceipt
from sferum_audit.application.service import AuditLog, CommandResult
from sferum_audit.application.settings import Settings
from sferum_audit.domain.access_incident import AccessIncident
from sferum_audit.domain.base import AuditedAggregate
from sferum_audit.domain.chat import Chat
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.elzhur_account import ElzhurAccount
from sferum_audit.domain.invitation import Invitation
from sferum_audit.domain.personal_data import ERASED, PERSONAL_FIELDS
from sferum_audit.domain.profile import Profile
from sferum_audit.domain.school import School

SCHOOL = "school-58"
PEOPLE = ["adm", "adm2", "t1", "t2", "t3", "s1", "s2", "s3", "p1", "p2", "so1", "ghost"]
PROFILES = {
    "t1": ("teacher", []),
    "t2": ("teacher", []),
    "t3": ("teacher", []),
    "s1": ("student", []),
    "s2": ("student", []),
    "s3": ("student", []),
    "p1": ("parent", ["s1"]),
    "p2": ("parent", ["s2", "s3"]),
    "so1": ("security-officer", []),
}
ROLES = [
    "school-administration",
    "administrator",
    "teacher",
    "class-teacher",
    "student",
    "parent",
    "security-officer",
    "system",
]
NATURAL_ACTORS = [
    ("adm", "administrator"),
    ("adm2", "administrator"),
    ("t1", "teacher"),
    ("t1", "class-teacher"),
    ("t2", "teacher"),
    ("t2", "class-teacher"),
    ("t3", "teacher"),
    ("s1", "student"),
    ("s2", "student"),
    ("s3", "student"),
    ("p1", "parent"),
    ("p2", "parent"),
    ("so1", "security-officer"),
    ("scheduler", "system"),
]
CLASSES = ["5a", "6b"]
CHATS = ["school-channel", "staff-room", "class-5a", "parents-5a", "class-6b", "parents-6b"]
CREATED_CHATS = ["c1", "c2"]
ALL_CHATS = CHATS + CREATED_CHATS
INVITATIONS = ["i1", "i2", "i3"]
INCIDENTS = ["n1", "n2"]
ACCOUNTS = ["e1", "e2", "e3"]
REASONS = ["оскорбление в чате", "   ", "п" * 1000]
ROLE_OF_AUTHORITY = {"2.3": "administrator", "2.4": "teacher", "2.5": "class-teacher"}
NATURAL_AUTHORITY = {role: code for code, role in ROLE_OF_AUTHORITY.items()}
MODERATION_EVENTS = {
    "ContentRemoved",
    "ContentBlocked",
    "MemberBlocked",
    "MemberUnblocked",
    "LiabilityWarned",
}
SCHOOL_ACTS_OF_2_3 = {
    "AdministratorAppointed",
    "AdministratorRemoved",
    "ClassCreated",
    "ClassTeacherAssigned",
    "ClassTeacherReleased",
    "PersonAdmitted",
    "StudentTransferred",
    "PersonLeft",
}
INCIDENT_STATES = ["reported", "acknowledged", "contained", "resolved", "dismissed"]
INCIDENT_STATE_AFTER = {
    "Acknowledged": "acknowledged",
    "ContainmentStepTaken": "contained",
    "Resolved": "resolved",
    "Dismissed": "dismissed",
}
INCIDENT_MAY_FOLLOW = {
    "acknowledged": {"reported"},
    "contained": {"acknowledged", "contained"},
    "resolved": {"acknowledged", "contained"},
    "dismissed": {"acknowledged", "contained"},
}

# -- strategies ------------------------------------------------------------------------------------
# Each command type draws its actor mostly from the people who would plausibly send it, and
# sometimes from anyone in any role, so that sequences both progress and probe refusals.

# t3 is appointed administrator in the set-up: a teacher who is also an administrator, to
# probe that 2.3 acts are only recorded when sent in the administrator role.
ADMINS = [
    ("adm", "administrator"),
    ("adm2", "administrator"),
    ("t3", "administrator"),
    ("t3", "teacher"),
]
CHAT_CREATORS = [
    ("adm", "administrator"),
    ("t1", "class-teacher"),
    ("t2", "teacher"),
    ("t3", "teacher"),
]
MEMBERS = [
    ("s1", "student"),
    ("s2", "student"),
    ("s3", "student"),
    ("p1", "parent"),
    ("p2", "parent"),
    ("t2", "teacher"),
    ("t3", "teacher"),
]
SECURITY_STAFF = [("so1", "security-officer"), ("adm", "administrator")]
EXPIRERS = [("scheduler", "system"), ("adm", "administrator")]
SELF = [("self", "")]  # the profile the command names, in its own role
SELF_IN_CLAIMED_ROLE = [("self-as", "")]  # the profile being registered, in the role it names


def mostly(
    likely: st.SearchStrategy[Any], sometimes: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """``likely`` about four times in five, else ``sometimes``."""
    return st.integers(0, 4).flatmap(lambda n: sometimes if n == 0 else likely)


people = st.sampled_from(PEOPLE)
profiles = st.sampled_from([*PROFILES, "ghost"])
members = mostly(
    st.sampled_from(["s1", "s3", "p1", "s2"]),  # members of class-5a / parents-5a / c1 at start
    st.sampled_from(["s1", "s2", "s3", "p1", "p2", "t2", "t3", "ghost"]),
)
students = st.sampled_from(["s1", "s2", "s3"])
# Resolved when the command is sent: the first current member (or blocked member) of its chat.
current_member = mostly(st.just("@member"), members)
blocked_member = mostly(st.just("@blocked"), members)
chats = st.sampled_from(ALL_CHATS)
authority = mostly(st.just("natural"), st.sampled_from(["2.3", "2.4", "2.5"]))
ground = st.sampled_from(["4.2.1", "4.2.4", "4.2.5", "law", "third-party-rights"])
reason = mostly(st.just(REASONS[0]), st.sampled_from(REASONS))
anyone = st.one_of(
    st.sampled_from(NATURAL_ACTORS), st.tuples(st.sampled_from(PEOPLE), st.sampled_from(ROLES))
)


def fields(
    command_type: str, pool: list[tuple[str, str]], **strategies: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    actor = mostly(st.sampled_from(pool), anyone)
    return st.tuples(st.just(command_type), actor, st.fixed_dictionaries(strategies))


# Who controls which chat at the start (the setup below), so moderation often succeeds.
IN_CONTROL = [
    *((("adm", "administrator"), chat) for chat in ALL_CHATS),
    (("t1", "class-teacher"), "class-5a"),
    (("t1", "class-teacher"), "parents-5a"),
    (("t2", "teacher"), "c1"),
    (("t2", "teacher"), "c2"),
    (("t3", "teacher"), "c2"),
    (("t1", "class-teacher"), "c2"),
]


# Just outside the control each has at the start: the boundaries of 2.3 / 2.4 / 2.5.
NEAR_MISSES = [
    (("t1", "class-teacher"), "class-6b"),
    (("t1", "class-teacher"), "parents-6b"),
    (("t1", "teacher"), "class-5a"),
    (("t1", "class-teacher"), "c1"),
    (("t2", "teacher"), "class-5a"),
    (("t2", "class-teacher"), "c1"),
    (("t2", "teacher"), "parents-6b"),
    (("t3", "teacher"), "c1"),
    (("t3", "class-teacher"), "class-5a"),
    (("adm2", "administrator"), "class-5a"),
    (("so1", "security-officer"), "class-5a"),
    (("s1", "student"), "class-5a"),
    (("p1", "parent"), "parents-5a"),
]
STAFF_ACTORS = [
    ("adm", "administrator"),
    ("t1", "class-teacher"),
    ("t1", "teacher"),
    ("t2", "teacher"),
    ("t2", "class-teacher"),
    ("t3", "teacher"),
    ("t3", "class-teacher"),
]


def in_chat(command_type: str, **strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A command on a chat: mostly sent by someone who controls the chat, else by someone
    just outside that control, by staff, or by anyone (where the authority rules decide)."""
    pair = st.integers(0, 4).flatmap(
        lambda n: (
            st.sampled_from(IN_CONTROL)
            if n < 2
            else st.sampled_from(NEAR_MISSES)
            if n == 2
            else st.tuples(st.sampled_from(STAFF_ACTORS) if n == 3 else anyone, chats)
        )
    )
    return st.tuples(st.just(command_type), pair, st.fixed_dictionaries(strategies)).map(
        lambda t: (t[0], t[1][0], {"chat_id": t[1][1], **t[2]})
    )


REGISTRATION = fields(
    "register-profile",
    SELF_IN_CLAIMED_ROLE * 4 + ADMINS,
    profile_id=st.sampled_from(["new1", "new2", "s1"]),
    role=st.sampled_from(["student", "parent", "teacher", "security-officer"]),
    display_name=st.just("Новенький"),
)
COMMANDS = st.one_of(
    fields("appoint-administrator", ADMINS, person_id=people, order_ref=st.just("приказ")),
    fields("remove-administrator", ADMINS, person_id=people, reason=reason),
    fields("assign-class-teacher", ADMINS, class_id=st.sampled_from(CLASSES), teacher_id=profiles),
    fields("release-class-teacher", ADMINS, class_id=st.sampled_from(CLASSES)),
    fields(
        "admit-person",
        ADMINS,
        person_id=people,
        roster_role=st.just("student"),
        class_id=st.sampled_from(CLASSES),
    ),
    fields("transfer-student", ADMINS, person_id=students, to_class_id=st.sampled_from(CLASSES)),
    fields("record-departure", ADMINS, person_id=people, reason=reason),
    fields("link-account", SELF, profile_id=profiles, elzhur_account_id=st.sampled_from(ACCOUNTS)),
    fields("unlink-account", SELF, profile_id=profiles, reason=reason),
    fields(
        "create-chat",
        CHAT_CREATORS,
        chat_id=st.sampled_from(CREATED_CHATS),
        kind=st.just("free"),
        title=st.just("Проект"),
        purpose=st.sampled_from(["project", "olympiad"]),
    ),
    in_chat("appoint-chat-moderator", profile_id=profiles),
    in_chat("remove-chat-moderator", profile_id=profiles),
    in_chat("archive-chat", reason=reason),
    in_chat("add-member", profile_id=members),
    in_chat("add-member", profile_id=members),
    in_chat("add-member", profile_id=members),
    fields("leave-chat", MEMBERS, chat_id=chats),
    in_chat("remove-member", profile_id=members, reason=reason),
    in_chat(
        "issue-invitation",
        invitation_id=st.sampled_from(INVITATIONS),
        role=st.sampled_from(["student", "parent", "teacher", "administrator"]),
        expires_in_hours=st.sampled_from([-1, 1, 48, 24 * 30]),
    ),
    fields("redeem-invitation", MEMBERS, invitation_id=st.sampled_from(INVITATIONS)),
    fields("redeem-invitation", MEMBERS, invitation_id=st.sampled_from(INVITATIONS)),
    fields("annul-invitation", ADMINS, invitation_id=st.sampled_from(INVITATIONS), reason=reason),
    fields("expire-invitation", EXPIRERS, invitation_id=st.sampled_from(INVITATIONS)),
    in_chat(
        "remove-content",
        authority=authority,
        ground=ground,
        message_id=st.just("m1"),
        author_id=members,
        reason=reason,
    ),
    in_chat(
        "block-member",
        authority=authority,
        ground=ground,
        member_id=current_member,
        reason=reason,
    ),
    in_chat(
        "block-member",
        authority=authority,
        ground=ground,
        member_id=current_member,
        reason=reason,
    ),
    in_chat(
        "unblock-member",
        authority=authority,
        member_id=blocked_member,
        reason=reason,
    ),
    in_chat(
        "warn-about-liability",
        authority=authority,
        ground=ground,
        member_id=current_member,
        reason=reason,
    ),
    in_chat(
        "warn-about-liability",
        authority=authority,
        ground=ground,
        member_id=current_member,
        reason=reason,
    ),
    fields(
        "report-unauthorised-access",
        MEMBERS,
        incident_id=st.sampled_from(INCIDENTS),
        affected_profile_id=members,
        noticed_minutes_ago=st.sampled_from([30, 30, -5]),
        how_noticed=st.just("уведомление о входе"),
        description=st.just("чужой вход"),
    ),
    fields(
        "record-notification",
        MEMBERS,
        incident_id=st.sampled_from(INCIDENTS),
        party=st.sampled_from(["school-administrator", "platform-operator"]),
    ),
    fields("acknowledge-incident", SECURITY_STAFF, incident_id=st.sampled_from(INCIDENTS)),
    fields(
        "take-containment-step",
        SECURITY_STAFF,
        incident_id=st.sampled_from(INCIDENTS),
        step=st.sampled_from(["sessions-revoked", "password-reset"]),
        note=st.just("сделано"),
    ),
    fields(
        "resolve-incident",
        SECURITY_STAFF,
        incident_id=st.sampled_from(INCIDENTS),
        findings=st.just("итог"),
    ),
    fields(
        "dismiss-incident",
        SECURITY_STAFF,
        incident_id=st.sampled_from(INCIDENTS),
        findings=st.just("итог"),
    ),
    REGISTRATION,
    REGISTRATION,  # listed twice: new profiles feed the commands that follow
    fields(
        "erase-personal-data",
        ADMINS,
        erasure_id=st.sampled_from(["x1", "x2"]),
        subject_id=members,
        requested_by=mostly(st.just("@subject"), members),
        basis=st.just("заявление субъекта, 152-ФЗ ст. 21"),
    ),
    st.tuples(
        st.just("resend"), st.just(("", "")), st.fixed_dictionaries({"index": st.integers(0, 99)})
    ),
)
STEPS = st.lists(
    st.tuples(COMMANDS, st.sampled_from([1, 1, 5, 60, 60 * 24 * 3])), min_size=20, max_size=80
)


# -- running a sequence ----------------------------------------------------------------------------


@dataclass
class Run:
    app: AuditLog
    clock: datetime = T0
    sent: list[dict[str, Any]] = field(default_factory=list)
    recorded: dict[str, CommandResult] = field(default_factory=dict)
    recorded_ids: set[str] = field(default_factory=set)
    refused: dict[str, CommandResult] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)

    def raw(
        self, command_type: str, actor: tuple[str, str], data: dict[str, Any]
    ) -> dict[str, Any]:
        data = dict(data)
        if actor[0] == "self-as":
            actor = (data["profile_id"], data["role"])
        if actor[0] == "self":
            profile_id = data["profile_id"]
            actor = (profile_id, PROFILES.get(profile_id, ("student", []))[0])
        if data.get("member_id") in {"@member", "@blocked"}:
            data["member_id"] = self.someone_in(data["chat_id"], data["member_id"])
        if data.get("requested_by") == "@subject":
            data["requested_by"] = data["subject_id"]
        if data.get("authority") == "natural":
            data["authority"] = NATURAL_AUTHORITY.get(actor[1], "2.3")
        if "expires_in_hours" in data:
            data["expires_at"] = (
                self.clock + timedelta(hours=data.pop("expires_in_hours"))
            ).isoformat()
        if "noticed_minutes_ago" in data:
            noticed = self.clock - timedelta(minutes=data.pop("noticed_minutes_ago"))
            data["noticed_at"] = noticed.isoformat()
        if command_type == "record-notification":
            data["told_at"] = self.clock.isoformat()
        return {
            "command_id": f"cmd-{len(self.sent) + 1}",  # sent grows by one per new command
            "type": command_type,
            "school_id": SCHOOL,
            "actor": {"id": actor[0], "role": actor[1]},
            "occurred_at": self.clock.isoformat(),
            **data,
        }

    def someone_in(self, chat_id: str, which: str) -> str:
        try:
            chat = self.app.repository.get(Chat.create_id(SCHOOL, chat_id))
        except AggregateNotFoundError:
            return "ghost"
        people = sorted(chat.members) if which == "@member" else sorted(chat.blocked)
        return people[0] if people else "ghost"

    def send(self, raw: dict[str, Any]) -> CommandResult:
        command = parse_command(raw)  # the generator only builds commands the schema accepts
        top = self.app.recorder.max_notification_id() or 0
        # anything but a DomainError propagates and fails the test
        if isinstance(command, ErasePersonalData):
            result = erase(self.app, command).result
            if result.status == "recorded":
                self.erased.add(command.subject_id)
        else:
            result = self.app.handle(command)
        event(f"{raw['type']}: {result.status}")
        if result.status == "rejected":
            assert result.error_code, result
            assert result.events == ()
            assert not result.repeat
            assert (self.app.recorder.max_notification_id() or 0) == top + 1  # its receipt
            self.refused[result.command_id] = result
        elif result.status == "recorded":
            assert result.events, result
            positions = [e.position for e in result.events]
            assert sorted(positions) == list(range(top + 1, top + 1 + len(positions)))
            assert self.app.recorder.max_notification_id() == top + len(positions) + 1  # receipt
            self.recorded_ids.add(result.command_id)
            self.recorded[result.command_id] = result
        else:
            raise AssertionError(f"a new command id came back as {result.status}: {result}")
        self.sent.append(raw)
        return result

    def resend(self, index: int) -> None:
        if not self.sent:
            return
        raw = self.sent[index % len(self.sent)]
        top = self.app.recorder.max_notification_id()
        again = self.app.handle(parse_command(raw))
        first = self.recorded.get(raw["command_id"])
        if first is not None:
            assert again.status == "duplicate", (first, again)
            assert again.events == first.events
        else:  # the first answer was a refusal, and stays the answer (repeated, not new)
            refusal = self.refused[raw["command_id"]]
            assert (again.status, again.repeat) == ("rejected", True), again
            assert (again.error_code, again.error_message) == (
                refusal.error_code,
                refusal.error_message,
            )
        assert self.app.recorder.max_notification_id() == top


def set_up(run: Run) -> None:
    """The universe every sequence starts from, recorded in one batch: the school with two
    classes (t1 class teacher of 5a), profiles, a roster, a teacher who is also an
    administrator (t3), some members, a teacher's chat (t2's c1), two open invitations, one
    linked account and one reported incident."""
    admin = ("adm", "administrator")
    month = (run.clock + timedelta(days=30)).isoformat()
    commands: list[tuple[str, tuple[str, str], dict[str, Any]]] = [
        (
            "register-school",
            ("director", "school-administration"),
            {
                "name": "Школа 58",
                "order_ref": "1065/1",
                "first_administrator_id": "adm",
            },
        ),
        *(("create-class", admin, {"class_id": c, "name": c}) for c in CLASSES),
        *(
            (
                "register-profile",
                admin,
                {"profile_id": pid, "role": role, "display_name": pid, "children": children},
            )
            for pid, (role, children) in PROFILES.items()
        ),
        *(
            ("admit-person", admin, {"person_id": s, "roster_role": "student", "class_id": c})
            for s, c in (("s1", "5a"), ("s2", "6b"), ("s3", "5a"))
        ),
        *(
            ("admit-person", admin, {"person_id": p, "roster_role": "staff"})
            for p in ("t1", "t2", "t3", "so1")
        ),
        ("assign-class-teacher", admin, {"class_id": "5a", "teacher_id": "t1"}),
        ("appoint-administrator", admin, {"person_id": "t3", "order_ref": "приказ 2"}),
        *(
            ("add-member", admin, {"chat_id": chat, "profile_id": who})
            for chat, who in (
                ("class-5a", "s1"),
                ("class-5a", "s3"),
                ("parents-5a", "p1"),
                ("class-6b", "s2"),
                ("parents-6b", "p2"),
                ("school-channel", "t2"),
            )
        ),
        (
            "create-chat",
            ("t2", "teacher"),
            {"chat_id": "c1", "kind": "free", "title": "Проект", "purpose": "project"},
        ),
        ("add-member", ("t2", "teacher"), {"chat_id": "c1", "profile_id": "s2"}),
        *(
            (
                "issue-invitation",
                admin,
                {"invitation_id": i, "chat_id": chat, "role": role, "expires_at": month},
            )
            for i, chat, role in (("i1", "class-5a", "student"), ("i2", "parents-6b", "parent"))
        ),
        ("link-account", ("s1", "student"), {"profile_id": "s1", "elzhur_account_id": "e1"}),
        (
            "report-unauthorised-access",
            ("p1", "parent"),
            {
                "incident_id": "n1",
                "affected_profile_id": "s1",
                "noticed_at": run.clock.isoformat(),
                "how_noticed": "письмо",
                "description": "чужой вход",
            },
        ),
    ]
    batch = [
        parse_command(run.raw(command_type, actor, data) | {"command_id": f"setup-{number}"})
        for number, (command_type, actor, data) in enumerate(commands, start=1)
    ]
    for result in run.app.handle_batch(batch):
        assert result.status == "recorded", result
        run.recorded_ids.add(result.command_id)


# -- replaying the log with an oracle --------------------------------------------------------------


def held_authorities(school: School, chat: Chat, profile: Profile | None, actor: str) -> set[str]:
    """docs/regulation.md, "Who may do what", written out independently of domain.authority."""
    held = set()
    if actor in school.state.administrators:
        held.add("2.3")
    own = actor in {chat.creator_id, chat.owner_id} or actor in chat.moderator_ids
    active_teacher = (
        profile is not None
        and profile.school_id == SCHOOL
        and profile.role == "teacher"
        and not profile.left_school
    )
    if active_teacher and own:
        held.add("2.4")
    classes = {c.class_id for c in school.state.classes.values() if c.class_teacher_id == actor}
    if classes and (own or (chat.kind in {"class", "parents"} and chat.class_id in classes)):
        held.add("2.5")
    return held


def is_security_staff(school: School, profile: Profile | None, ctx: CommandContext) -> bool:
    if ctx.actor_role == "administrator":
        return ctx.actor_id in school.state.administrators
    return (
        ctx.actor_role == "security-officer"
        and profile is not None
        and profile.school_id == SCHOOL
        and profile.role == "security-officer"
        and not profile.left_school
    )


def may_be_member(school: School, chat: Chat, profile: Profile, role: str) -> bool:
    """The order: a class's class chat and parents' chat are for that class's students
    and their parents (and its class teacher); staff join the staff room as teachers; a
    chat bound to a class takes its students, their parents and teachers."""

    def class_of(person: str) -> str | None:
        entry = school.state.roster.get(person)
        return entry.class_id if entry is not None else None

    of_class = chat.class_id is not None and (
        (profile.role == "student" and class_of(profile.profile_id) == chat.class_id)
        or (
            profile.role == "parent" and any(class_of(k) == chat.class_id for k in profile.children)
        )
    )
    teaches = any(
        c.class_teacher_id == profile.profile_id and c.class_id == chat.class_id
        for c in school.state.classes.values()
    )
    if chat.kind == "staff-room":
        return profile.role == "teacher" and role == "teacher"
    if chat.kind == "class":
        return of_class or teaches
    if chat.kind == "parents":
        return teaches or (of_class and profile.role == "parent")
    if chat.class_id is not None:
        return of_class or profile.role == "teacher"
    return True


def replay_and_check(
    app: AuditLog, recorded_ids: set[str], erased: set[str], refused_ids: set[str]
) -> dict[UUID, AuditedAggregate]:
    """Applies every stored event in log order, checking each against the state before it."""
    aggregates: dict[UUID, AuditedAggregate] = {}
    redemptions: Counter[UUID] = Counter()
    school_id = School.create_id(SCHOOL)
    notifications = app.recorder.select_notifications(1, 1_000_000)
    assert [n.id for n in notifications] == list(range(1, len(notifications) + 1))
    for notification in notifications:
        event = app.mapper.to_domain_event(notification)
        name = type(event).__name__
        ctx: CommandContext = event.ctx
        assert isinstance(ctx, CommandContext)
        assert ctx.correlation_id == ctx.command_id
        assert ctx.occurred_at.tzinfo is not None
        assert event.timestamp.tzinfo is not None
        if isinstance(event, CommandReceipt.Refused):
            assert ctx.command_id in refused_ids, ctx.command_id
            assert ctx.command_id not in recorded_ids
            continue
        assert ctx.command_id in recorded_ids, ctx.command_id
        target = aggregates.get(event.originator_id)
        school = aggregates.get(school_id)
        actor_profile = aggregates.get(Profile.create_id(ctx.actor_id))
        assert actor_profile is None or isinstance(actor_profile, Profile)

        if isinstance(target, Chat) and name in MODERATION_EVENTS:
            assert isinstance(school, School)
            held = held_authorities(school, target, actor_profile, ctx.actor_id)
            assert event.authority in held, (name, ctx, held)
            assert ctx.actor_role == ROLE_OF_AUTHORITY[event.authority], (name, ctx)
            if name == "LiabilityWarned":
                assert event.authority == "2.5"
        if isinstance(target, Chat) and name == "MemberJoined":
            assert event.profile_id not in target.blocked, "a blocked member rejoined"
            joined = aggregates.get(Profile.create_id(event.profile_id))
            assert isinstance(joined, Profile)
            assert not joined.left_school, "someone who left the school joined a chat"
            assert isinstance(school, School)
            assert may_be_member(school, target, joined, event.role), (target.chat_id, event)
            assert ctx.occurred_at >= target.created_at
        if isinstance(target, Invitation):
            if name == "Redeemed":
                redemptions[event.originator_id] += 1
                assert target.status == "issued"
                assert ctx.occurred_at < target.expires_at
                assert ctx.occurred_at >= target.issued_at
                assert isinstance(actor_profile, Profile)
                assert isinstance(school, School)
                if target.role == "administrator":
                    assert actor_profile.role == "teacher"
                    assert ctx.actor_id in school.state.administrators
                else:
                    assert actor_profile.role == target.role, (target.role, actor_profile.role)
            if name == "Annulled":
                assert isinstance(school, School)
                assert ctx.actor_id in school.state.administrators
                assert ctx.actor_role == "administrator"
        if isinstance(target, AccessIncident) or name == "Reported":
            check_incident_event(name, event, target, school, actor_profile)
        if isinstance(target, School) and name in SCHOOL_ACTS_OF_2_3:
            assert ctx.actor_id in target.state.administrators, (name, ctx)
            assert ctx.actor_role == "administrator", (name, ctx)
            assert ctx.occurred_at >= target.registered_at
        if isinstance(target, School) and name == "AdministratorAppointed":
            appointed = aggregates.get(Profile.create_id(event.person_id))
            entry = target.state.roster.get(event.person_id)
            assert entry is not None, "appointed from outside the roster"
            assert entry.role == "staff", "appointed from outside the staff"
            assert isinstance(appointed, Profile)
            assert appointed.role == "teacher"
            assert not appointed.left_school
        if name == "Registered" and event.originator_id == Profile.create_id(
            getattr(event, "profile_id", "")
        ):
            by_self = ctx.actor_id == event.profile_id and ctx.actor_role == event.role
            assert (by_self and event.role in {"student", "parent"}) or (
                isinstance(school, School)
                and ctx.actor_role == "administrator"
                and ctx.actor_id in school.state.administrators
            ), (ctx, event.role)
        personal = PERSONAL_FIELDS.get(type(event).__qualname__)
        if personal is not None and vars(event)[personal.subject_field] in erased:
            for name_of_field in personal.fields:
                assert vars(event).get(name_of_field) in {None, ERASED}, "erased data readable"

        aggregates[event.originator_id] = event.mutate(target)

    assert all(count <= 1 for count in redemptions.values()), "an invitation redeemed twice"
    return aggregates


def check_incident_event(
    name: str,
    event: Any,
    incident: AuditedAggregate | None,
    school: AuditedAggregate | None,
    actor_profile: Profile | None,
) -> None:
    """Reported by the holder or a parent of the affected child; then handled by security
    staff, each state following the one before it."""
    if name == "Reported" and incident is None and hasattr(event, "affected_profile_id"):
        if event.ctx.actor_id != event.affected_profile_id:
            assert event.ctx.actor_role == "parent"
            assert actor_profile is not None
            assert actor_profile.is_parent_of(event.affected_profile_id)
        return
    if not isinstance(incident, AccessIncident) or name == "PartyNotified":
        return
    assert isinstance(school, School)
    assert is_security_staff(school, actor_profile, event.ctx), (name, event.ctx)
    after = INCIDENT_STATE_AFTER[name]
    assert incident.state in INCIDENT_MAY_FOLLOW[after], f"{incident.state} -> {after}"
    assert INCIDENT_STATES.index(after) >= INCIDENT_STATES.index(incident.state)
    assert event.ctx.occurred_at >= incident.last_step_at, "a step dated before the one before"


def check_final_state(app: AuditLog, replayed: dict[UUID, AuditedAggregate]) -> None:
    """Invariants of the state a fresh service rebuilds from the store."""

    def find(aggregate_id: UUID) -> Any:
        aggregate = replayed.get(aggregate_id)
        if aggregate is None:
            return None
        stored = app.repository.get(aggregate_id)
        assert stored.version == aggregate.version
        return stored

    for chat_id in ALL_CHATS:
        chat = find(Chat.create_id(SCHOOL, chat_id))
        if chat is None:
            continue
        assert not set(chat.members) & chat.blocked, f"blocked member of {chat_id}"
        assert chat.members == replayed[chat.id].members
        for member in chat.members:
            profile = find(Profile.create_id(member))
            assert profile is not None, (chat_id, member)
            assert not profile.left_school, (chat_id, member)

    links: dict[str, str] = {}
    for profile_id in PROFILES:
        profile = find(Profile.create_id(profile_id))
        if profile.elzhur_account_id is not None:
            assert profile.elzhur_account_id not in links, "one account linked to two profiles"
            links[profile.elzhur_account_id] = profile_id
    for account_id in ACCOUNTS:
        account = find(ElzhurAccount.create_id(account_id))
        holder = account.holder if account is not None else None
        assert links.get(account_id) == holder, (account_id, holder, links)

    for invitation_id in INVITATIONS:
        invitation = find(Invitation.create_id(SCHOOL, invitation_id))
        if invitation is not None:
            assert (invitation.status == "redeemed") == (invitation.redeemed_by is not None)
            if invitation.status == "redeemed":
                chat = find(Chat.create_id(SCHOOL, invitation.chat_id))
                assert chat is not None


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=STEPS)
def test_random_command_sequences_keep_every_invariant(
    steps: list[tuple[tuple[str, tuple[str, str], dict[str, Any]], int]],
) -> None:
    with tempfile.TemporaryDirectory(prefix="sferum-prop-") as folder:
        store = Settings(data_dir=Path(folder), database_url=None, database_schema=None)
        app = build_audit_log(store)
        try:
            run = Run(app)
            set_up(run)
            for (command_type, actor, data), minutes in steps:
                run.clock += timedelta(minutes=minutes)
                if command_type == "resend":
                    run.resend(data["index"])
                else:
                    run.send(run.raw(command_type, actor, data))
        finally:
            app.close()

        fresh = build_audit_log(store)
        try:
            receipts = {
                fresh.repository.get(CommandReceipt.create_id(cid)).command_id
                for cid in run.recorded_ids
            }
            assert receipts == run.recorded_ids
            for command_id, refusal in run.refused.items():
                receipt = fresh.repository.get(CommandReceipt.create_id(command_id))
                assert receipt.error_code == refusal.error_code
            replayed = replay_and_check(fresh, run.recorded_ids, run.erased, set(run.refused))
            check_final_state(fresh, replayed)
        finally:
            fresh.close()
