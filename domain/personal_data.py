"""Which event fields hold personal data, and whose (the data subject).

Identifiers (profile ids, account ids) are pseudonymous and stay in the clear so the log
can be joined and counted. Names and free text that may name or describe a person are
personal data: the store keeps each such field encrypted with its subject's own key, so
destroying that key erases the data (152-FZ) without changing a stored byte's place in
the log. The application's mapper applies this table; the domain only declares it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class PersonalFields:
    """The field that names the data subject, and the fields that are their personal data."""

    subject_field: str
    fields: tuple[str, ...]


ERASED: Final = "[erased]"

# Event types (``Aggregate.Event``) and their personal fields.
PERSONAL_FIELDS: Final[dict[str, PersonalFields]] = {
    "Profile.Registered": PersonalFields("profile_id", ("display_name",)),
    "School.PersonLeft": PersonalFields("person_id", ("reason",)),
    "School.AdministratorRemoved": PersonalFields("person_id", ("reason",)),
    "Chat.MemberRemoved": PersonalFields("profile_id", ("reason",)),
    "Chat.ContentRemoved": PersonalFields("author_id", ("reason", "excerpt")),
    "Chat.ContentBlocked": PersonalFields("author_id", ("reason", "excerpt")),
    "Chat.MemberBlocked": PersonalFields("member_id", ("reason",)),
    "Chat.MemberUnblocked": PersonalFields("member_id", ("reason",)),
    "Chat.LiabilityWarned": PersonalFields("member_id", ("reason",)),
    "AccessIncident.Reported": PersonalFields(
        "affected_profile_id", ("how_noticed", "description")
    ),
    "AccessIncident.ContainmentStepTaken": PersonalFields("affected_profile_id", ("note",)),
    "AccessIncident.Resolved": PersonalFields("affected_profile_id", ("findings",)),
    "AccessIncident.Dismissed": PersonalFields("affected_profile_id", ("findings",)),
}

# Fields that hold a name the person registered with; every other personal field is free
# text, which may also name other people, and so is sealed under a key of its own record
# as well (see ``application.personal_data_mapper``).
NAME_FIELDS: Final = frozenset({"display_name"})


def text_subject(originator_id: object, version: int) -> str:
    """The key subject of one record's free text: erasing a person whom the text names
    destroys it, and only that record's free text becomes unreadable."""
    return f"text/{originator_id}/{version}"


# Categories named in a destruction act (Roskomnadzor Order No. 179).
PERSONAL_DATA_CATEGORIES: Final = (
    "name as shown in the education profile",
    "excerpts of messages written by the person",
    "free-text reasons and notes about the person (moderation, departures)",
    "descriptions and findings of access incidents concerning the person",
)
