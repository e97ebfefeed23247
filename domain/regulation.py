"""The stable codes of ``docs/regulation.md`` that events, audit entries and filters use.

The order (School 58, Kaliningrad, No. 1065/1) numbers its rules (2.3, 4.2.4, ...); this
module is the single place where its codes become values the code can check.
"""

from __future__ import annotations

from typing import Final

from sferum_audit.domain.errors import InvalidValue

# Authorities that may moderate (section 2 of the order).
PLATFORM_ADMINISTRATOR: Final = "2.3"
TEACHER: Final = "2.4"
CLASS_TEACHER: Final = "2.5"
MODERATION_AUTHORITIES: Final = frozenset({PLATFORM_ADMINISTRATOR, TEACHER, CLASS_TEACHER})

# Grounds of a moderation action: obligations of 4.2 plus the two of 2.4/2.5.
GROUNDS: Final = frozenset(
    {"4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.5", "4.2.6", "law", "third-party-rights"}
)

# The role an actor claims when sending a command; the domain verifies the claim.
ACTOR_ROLES: Final = frozenset(
    {
        "school-administration",  # 2.2
        "administrator",  # 2.3
        "teacher",  # 2.4
        "class-teacher",  # 2.5
        "student",  # 2.7
        "parent",  # 2.8
        "security-officer",  # handles 4.2.2 reports
        "system",  # scheduled jobs, e.g. expiring invitation links
    }
)

# The role an authority is exercised in: the recorded actor role must match it.
ROLE_OF_AUTHORITY: Final = {
    PLATFORM_ADMINISTRATOR: "administrator",
    TEACHER: "teacher",
    CLASS_TEACHER: "class-teacher",
}

# Roles of an education profile (who the person is at school).
PROFILE_ROLES: Final = frozenset({"teacher", "student", "parent", "security-officer"})

# Roles an invitation link may grant.
INVITATION_ROLES: Final = frozenset({"teacher", "student", "parent", "administrator"})

# Chat kinds. Channel and staff room exist once per school, class and parents once per class.
SCHOOL_CHANNEL: Final = "school-channel"
STAFF_ROOM: Final = "staff-room"
CLASS_CHAT: Final = "class"
PARENTS_CHAT: Final = "parents"
SUBJECT_CHAT: Final = "subject"
FREE_CHAT: Final = "free"
CHAT_KINDS: Final = frozenset(
    {SCHOOL_CHANNEL, STAFF_ROOM, CLASS_CHAT, PARENTS_CHAT, SUBJECT_CHAT, FREE_CHAT}
)
CREATABLE_CHAT_KINDS: Final = frozenset({SUBJECT_CHAT, FREE_CHAT})

# Purposes of free chats for extracurricular work (2.4, 2.5).
FREE_CHAT_PURPOSES: Final = frozenset(
    {"project", "class-hour", "excursion", "olympiad", "online-marathon", "other"}
)

# Containment steps security staff take on an access incident (4.2.2).
CONTAINMENT_STEPS: Final = frozenset(
    {"sessions-revoked", "account-link-removed", "invitations-annulled", "password-reset"}
)

# Whom a reporter of unauthorised access must tell (4.2.2).
NOTIFIED_PARTIES: Final = frozenset({"school-administrator", "platform-operator"})

MAX_REASON_LENGTH: Final = 1000


def require_one_of(value: str, allowed: frozenset[str], what: str) -> str:
    """Return ``value`` if the regulation knows it, else raise a readable ``InvalidValue``."""
    if value not in allowed:
        choices = ", ".join(sorted(allowed))
        raise InvalidValue(f"unknown {what} {value!r}; expected one of: {choices}")
    return value


def require_text(value: str, what: str, max_length: int = MAX_REASON_LENGTH) -> str:
    """Return ``value`` if it is non-blank and short enough, else raise ``InvalidValue``."""
    if not value or not value.strip():
        raise InvalidValue(f"{what} must not be empty")
    if len(value) > max_length:
        raise InvalidValue(f"{what} is {len(value)} characters long; at most {max_length}")
    return value
