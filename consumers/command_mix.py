"""A deterministic mix of valid commands for one school, for tests and the ingest benchmark.

The demo publishes ``sferum_audit.application.sample_school``; this generator is the
pipeline's own, independent of it, so the consumer tests do not depend on the sample's
content. It covers the five event families: the school and its classes, profiles and
account links, chats and membership, invitations, moderation actions, and an
unauthorised-access report.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2024, 12, 2, 8, 0, tzinfo=UTC)


class _Clock:
    def __init__(self, start: datetime) -> None:
        self._now = start

    def tick(self) -> str:
        self._now += timedelta(seconds=7)
        return self._now.isoformat()


def school_commands(
    school_id: str,
    *,
    students: int = 6,
    moderations: int = 20,
    seed: int = 58,
    start: datetime = START,
) -> list[dict[str, Any]]:
    """The commands that set up a school and then moderate its class chat, in order.

    Every command is valid in this order: all of them are recorded when applied in it.
    ``moderations`` removals, blocks and warnings follow the set-up.
    """
    rng = random.Random(f"{school_id}/{seed}")  # noqa: S311  # test data, not secrets
    clock = _Clock(start)
    director, admin, teacher = f"dir-{school_id}", f"adm-{school_id}", f"t-{school_id}"
    pupils = [f"s{i}-{school_id}" for i in range(students)]
    counter = iter(range(1_000_000))

    def cmd(kind: str, actor: str, actor_role: str, /, **fields: Any) -> dict[str, Any]:
        return {
            "command_id": f"{school_id}-{next(counter):06d}-{kind}",
            "type": kind,
            "school_id": school_id,
            "actor": {"id": actor, "role": actor_role},
            "occurred_at": clock.tick(),
            **fields,
        }

    out = [
        cmd(
            "register-school",
            director,
            "school-administration",
            name=f"School {school_id}",
            order_ref="No. 1065/1",
            first_administrator_id=admin,
        ),
        cmd("create-class", admin, "administrator", class_id="5a", name="5А"),
        cmd(
            "register-profile",
            admin,
            "administrator",
            profile_id=teacher,
            role="teacher",
            display_name="Иванова Мария Петровна",
        ),
        cmd("assign-class-teacher", admin, "administrator", class_id="5a", teacher_id=teacher),
        cmd(
            "link-account",
            teacher,
            "teacher",
            profile_id=teacher,
            elzhur_account_id=f"ej-{teacher}",
        ),
    ]
    for pupil in pupils:
        out += [
            cmd(
                "register-profile",
                pupil,
                "student",
                profile_id=pupil,
                role="student",
                display_name=f"Ученик {pupil}",
            ),
            cmd(
                "admit-person",
                admin,
                "administrator",
                person_id=pupil,
                roster_role="student",
                class_id="5a",
            ),
            cmd("add-member", admin, "administrator", chat_id="class-5a", profile_id=pupil),
        ]
    out.append(
        cmd(
            "issue-invitation",
            admin,
            "administrator",
            invitation_id="inv-1",
            chat_id="parents-5a",
            role="parent",
            expires_at=(start + timedelta(days=30)).isoformat(),
        )
    )
    out.append(
        cmd("annul-invitation", admin, "administrator", invitation_id="inv-1", reason="unused")
    )
    grounds = ["4.2.4", "4.2.5", "4.2.6", "law", "third-party-rights"]
    for i in range(moderations):
        author = rng.choice(pupils)
        if i % 5 == 4:
            out.append(
                cmd(
                    "warn-about-liability",
                    teacher,
                    "class-teacher",
                    chat_id="class-5a",
                    authority="2.5",
                    ground="4.2.4",
                    member_id=author,
                    reason="insults in the class chat",
                )
            )
        else:
            kind = "remove-content" if i % 2 == 0 else "block-content"
            out.append(
                cmd(
                    kind,
                    teacher,
                    "class-teacher",
                    chat_id="class-5a",
                    authority="2.5",
                    ground=rng.choice(grounds),
                    message_id=f"msg-{i}",
                    author_id=author,
                    reason="breaks the chat rules",
                    excerpt="текст сообщения",
                )
            )
    out.append(
        cmd(
            "report-unauthorised-access",
            pupils[0],
            "student",
            incident_id="inc-1",
            affected_profile_id=pupils[0],
            noticed_at=clock.tick(),
            how_noticed="messages I did not write",
            description="someone used my account",
            told={"school-administrator": clock.tick()},
        )
    )
    return out
