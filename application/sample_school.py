"""A realistic sample school as commands: one week of its chats, links and moderation.

``sample_school`` returns the JSON-ready commands (the schema of ``parse_command``) for a
school of a few dozen people under the order of School 58: the administration registers
the school; administrators (2.3) register the staff and set up classes and class teachers;
students and parents create their profiles; people link them to ElZhur; the staff room,
class and parents' chats fill through invitations; and during one week teachers moderate
(2.3, 2.4, 2.5 on grounds of 4.2, law and third-party rights) while two reports of
unauthorised access (4.2.2) are handled.

It is pure and fast: the same ``(school_id, seed)`` always gives the same commands. Command
ids come from ``school_id`` and a counter, so loading it twice records nothing new; every
other id is prefixed with ``school_id`` too, so many schools (a whole region, for
benchmarks) live side by side in one store. The seed changes names and who misbehaves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

# Kaliningrad time, where School 58 is; the Monday after the order of 25 Nov 2024.
DEFAULT_START = datetime(2024, 12, 2, 8, 0, tzinfo=timezone(timedelta(hours=2)))
CLASSES = (("5a", "5А", 7), ("7b", "7Б", 7), ("9v", "9В", 6))
ANNUL_REASON = "ссылка не использована; аннулирована в целях информационной безопасности (2.3)"
FEMALE_NAMES = ("Анна", "Мария", "Дарья", "София", "Полина", "Ксения", "Алиса", "Вера", "Ева")
MALE_NAMES = ("Иван", "Артём", "Михаил", "Егор", "Даниил", "Кирилл", "Максим", "Лев", "Фёдор")
# fmt: off
# The week of moderation: (day, hour, minute, command, moderator, chat, ground, whom, reason).
MODERATION_WEEK = (
    (1, 18, 40, "remove-content", "ct-5a", "class-5a", "4.2.4", "rude5",
     "Нецензурная брань в общем чате класса"),
    (1, 18, 45, "warn-about-liability", "ct-5a", "class-5a", "4.2.4", "rude5",
     "Предупреждение об ответственности за оскорбления одноклассников"),
    (2, 16, 5, "remove-content", "math", "olympiad-physics", "third-party-rights", "s9-1",
     "Опубликованы задания олимпиады без разрешения правообладателя"),
    (2, 20, 10, "block-content", "ct-7b", "class-7b", "4.2.6", "leaker",
     "Номер телефона и адрес одноклассника без его согласия"),
    (2, 20, 15, "block-member", "ct-7b", "class-7b", "4.2.6", "leaker",
     "Повторное распространение персональных данных после замечания"),
    (3, 12, 30, "remove-content", "math", "math-9v", "law", "s9-2",
     "Реклама азартных игр, запрещённая законом для несовершеннолетних"),
    (3, 12, 35, "block-content", "math", "math-9v", "4.2.3", "s9-3",
     "Предложение передать логин и пароль от аккаунта другому ученику"),
    (3, 19, 0, "remove-content", "ct-9v", "parents-9v", "4.2.5", "parent-9v",
     "Коммерческая реклама в родительском чате"),
    (4, 9, 0, "unblock-member", "ct-7b", "class-7b", None, "leaker",
     "Проведена беседа с учеником и родителями; нарушение не повторяется"),
    (4, 16, 20, "remove-content", "adm-2", "excursion-7b", "third-party-rights", "parent-7b",
     "Фотографии чужих детей опубликованы без согласия их родителей"),
    (5, 11, 0, "remove-content", "russian", "russian-7b", "4.2.4", "rude7",
     "Оскорбительный комментарий к ответу одноклассника"),
    (5, 11, 10, "warn-about-liability", "ct-7b", "class-7b", "4.2.4", "rude7",
     "Предупреждение после удаления оскорбления в чате по русскому языку"),
    (5, 17, 30, "warn-about-liability", "ct-9v", "class-9v", "4.2.3", "s9-3",
     "Предложение передать аккаунт другому ученику нарушает правила"),
)
SURNAMES = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов",
            "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Лебедев", "Егоров")
# fmt: on

Actor = tuple[str, str]


def sample_school(
    school_id: str, *, seed: int = 58, start: datetime | None = None
) -> list[dict[str, Any]]:
    """The commands of one sample school's first week, in the order they happened.

    Every command is accepted on a store that does not hold this school yet; loading the
    same commands again gives only duplicates. ``start`` (timezone-aware) is when set-up
    begins; the week of moderation follows on the next days.
    """
    start = start or DEFAULT_START
    if start.tzinfo is None:
        raise ValueError("the sample school's start must be timezone-aware")
    school = _SampleSchool(school_id, start, random.Random(f"{seed}/{school_id}"))  # noqa: S311  # names, not secrets
    school.set_up()
    school.moderate_week()
    school.settle_invitations()
    school.handle_access_incidents()
    return school.finish()


@dataclass
class _SampleSchool:
    """Builds the commands; set-up runs on a minute clock, the week at fixed times."""

    sid: str
    start: datetime
    rng: random.Random
    clock: datetime = field(init=False)
    timeline: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    used_names: set[str] = field(default_factory=set)
    students: dict[str, list[str]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    unlinked: set[str] = field(default_factory=set)
    troubled: list[tuple[str, str, str, str, Actor]] = field(default_factory=list)
    invitations: int = 0
    messages: int = 100

    def __post_init__(self) -> None:
        self.clock = self.start
        self.director = self.id("director")
        self.admins = [self.id("adm-1"), self.id("adm-2")]
        self.teachers = [self.id(f"t-{n}") for n in range(1, 7)]
        self.officer = self.id("sec-1")
        self.class_teachers = {
            c: t for (c, _, _), t in zip(CLASSES, self.teachers[:3], strict=True)
        }

    # -- building blocks --------------------------------------------------------------------------

    def id(self, local: str) -> str:
        return f"{self.sid}-{local}"

    def day(self, day: int, hour: int, minute: int = 0) -> datetime:
        """A time in the week: ``day`` days after the start's date, at ``hour:minute``."""
        midnight = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + timedelta(days=day, hours=hour, minutes=minute)

    def add(self, type_: str, actor: Actor, at: datetime | None = None, **fields: Any) -> None:
        """A command at ``at``, or one minute after the previous set-up command."""
        at = at or self.tick()
        command = {
            "type": type_,
            "school_id": self.sid,
            "actor": {"id": actor[0], "role": actor[1]},
        }
        command |= {"occurred_at": at.isoformat(), **fields}
        self.timeline.append((at, len(self.timeline), command))

    def tick(self) -> datetime:
        """The next minute of set-up."""
        self.clock += timedelta(minutes=1)
        return self.clock

    def finish(self) -> list[dict[str, Any]]:
        """The commands in time order, numbered into their deterministic command ids."""
        ordered = sorted(self.timeline, key=lambda entry: entry[:2])
        return [
            {"command_id": f"{self.sid}-{number:05d}", **command}
            for number, (_, _, command) in enumerate(ordered, start=1)
        ]

    def person(self, person: str, role: str, *, female: float = 0.5) -> None:
        """A profile under a seeded, unique name: students and parents register their own
        (2.7, 2.8); an administrator registers staff (2.3)."""
        name = ""
        while not name or name in self.used_names:
            is_female = self.rng.random() < female
            first = self.rng.choice(FEMALE_NAMES if is_female else MALE_NAMES)
            name = f"{self.rng.choice(SURNAMES)}{'а' if is_female else ''} {first}"
        self.used_names.add(name)
        self.names[person] = name
        extra: dict[str, Any] = {"children": self.children[person]} if role == "parent" else {}
        own = role in {"student", "parent"}
        self.add(
            "register-profile",
            (person, role) if own else (self.admins[0], "administrator"),
            profile_id=person,
            role=role,
            **extra,
            display_name=self.names[person],
        )

    def invite(
        self, issuer: Actor, chat: str, role: str, days: int, at: datetime | None = None
    ) -> str:
        self.invitations += 1
        invitation = self.id(f"inv-{self.invitations:03d}")
        at = at or self.tick()
        expires = at + timedelta(days=days)
        self.add(
            "issue-invitation",
            issuer,
            at,
            invitation_id=invitation,
            chat_id=chat,
            role=role,
            expires_at=expires.isoformat(),
        )
        return invitation

    def join_by_invitation(self, issuer: Actor, chat: str, person: str, role: str) -> None:
        invitation = self.invite(issuer, chat, role, 7)
        own_role = "teacher" if role == "administrator" else role
        self.add("redeem-invitation", (person, own_role), invitation_id=invitation)

    def join_or_trouble(self, issuer: Actor, chat: str, person: str, role: str) -> None:
        """Linked people redeem their link; the others' links go stale, are annulled, or expire
        (in turn), as happens to links nobody uses."""
        if person not in self.unlinked:
            self.join_by_invitation(issuer, chat, person, role)
            return
        fate = ("stale", "annul", "expire")[len(self.troubled) % 3]
        invitation = self.invite(issuer, chat, role, 2 if fate == "expire" else 30)
        self.troubled.append((fate, invitation, chat, person, issuer))

    def add_member(self, actor: Actor, chat: str, person: str, via: str = "added") -> None:
        self.add("add-member", actor, chat_id=chat, profile_id=person, via=via)

    def message(self, chat: str) -> str:
        self.messages += 1
        return f"{chat}-msg-{self.messages}"

    # -- the story -------------------------------------------------------------------------------

    def set_up(self) -> None:
        """Day 0: the school, its staff, classes, profiles, links, chats and their members."""
        adm = (self.admins[0], "administrator")
        self.add(
            "register-school",
            (self.director, "school-administration"),
            name=f"МАОУ СОШ № 58 г. Калининграда ({self.sid})",
            order_ref="приказ № 1065/1 от 25.11.2024",
            first_administrator_id=self.admins[0],
        )
        self.person(self.admins[0], "teacher", female=0.7)
        # The second administrator is appointed from the teaching staff who joined the
        # platform (2.2, 2.3): taken on the staff roster, with a teacher profile, first.
        self.person(self.admins[1], "teacher")
        self.add("admit-person", adm, person_id=self.admins[1], roster_role="staff")
        self.add(
            "appoint-administrator",
            adm,
            person_id=self.admins[1],
            order_ref="приказ № 1066 от 26.11.2024",
        )
        for teacher in self.teachers:
            self.person(teacher, "teacher", female=0.75)
        self.person(self.officer, "security-officer", female=0.2)
        number = 0  # students are numbered through the school
        for class_id, name, size in CLASSES:
            self.add("create-class", adm, class_id=class_id, name=name)
            self.add(
                "assign-class-teacher",
                adm,
                class_id=class_id,
                teacher_id=self.class_teachers[class_id],
            )
            self.students[class_id] = [self.id(f"s-{number + n:02d}") for n in range(1, size + 1)]
            number += size
        for staff in [*self.teachers, self.officer]:
            self.add("admit-person", adm, person_id=staff, roster_role="staff")
        for class_id, members in self.students.items():
            for student in members:
                self.add(
                    "admit-person", adm, person_id=student, roster_role="student", class_id=class_id
                )
                self.person(student, "student")
        s5, s7, s9 = self.students.values()
        only_child = [[kid] for kid in s5[:3] + s7[1:5] + s9[:4]]
        families = [*only_child[:3], [s5[3], s7[0]], *only_child[3:]]
        for n, kids in enumerate(families, start=1):
            self.children[self.id(f"p-{n:02d}")] = kids
            self.person(self.id(f"p-{n:02d}"), "parent", female=0.8)
        self.unlinked = {s5[4], s7[5], s9[4], self.id("p-06"), self.id("p-11")}
        for profile in self.names:
            if profile not in self.unlinked:
                role = self.own_role(profile)
                self.add(
                    "link-account",
                    (profile, role),
                    profile_id=profile,
                    elzhur_account_id=f"ej-{profile}",
                )
        self.fill_chats(adm)

    def own_role(self, profile: str) -> str:
        if profile in self.children:
            return "parent"
        if profile == self.officer:
            return "security-officer"
        return "teacher" if profile in self.admins or profile in self.teachers else "student"

    def fill_chats(self, adm: Actor) -> None:
        self.add_member(adm, "staff-room", self.admins[0])
        self.join_by_invitation(adm, "staff-room", self.admins[1], "administrator")
        for teacher in self.teachers[:5]:
            self.join_by_invitation(adm, "staff-room", teacher, "teacher")
        self.add_member(adm, "staff-room", self.teachers[5], "account-link")
        class_of = {kid: c for c, kids in self.students.items() for kid in kids}
        for class_id, teacher in self.class_teachers.items():
            ct = (teacher, "class-teacher")
            class_chat, parents_chat = f"class-{class_id}", f"parents-{class_id}"
            self.add_member(ct, class_chat, teacher)
            self.add_member(ct, parents_chat, teacher)
            *invited, by_link = self.students[class_id]
            for student in invited:
                self.join_or_trouble(ct, class_chat, student, "student")
            self.add_member(ct, class_chat, by_link, "account-link")
            for parent, kids in self.children.items():
                if class_of[kids[0]] == class_id:
                    self.join_or_trouble(ct, parents_chat, parent, "parent")
                elif any(class_of[kid] == class_id for kid in kids):
                    self.add_member(ct, parents_chat, parent, "account-link")
        _, s7, s9 = self.students.values()
        math, russian, physics = ((t, "teacher") for t in self.teachers[3:])
        for owner, chat, title, subject, class_id, members in (
            (math, "math-9v", "Алгебра, 9В", "математика", "9v", s9),
            (russian, "russian-7b", "Русский язык, 7Б", "русский язык", "7b", s7),
        ):
            self.add(
                "create-chat",
                owner,
                chat_id=chat,
                kind="subject",
                title=title,
                subject=subject,
                class_id=class_id,
            )
            for member in members:
                self.add_member(owner, chat, member)
        self.add(
            "create-chat",
            physics,
            chat_id="olympiad-physics",
            kind="free",
            title="Олимпиада по физике: подготовка",
            purpose="olympiad",
        )
        self.add("appoint-chat-moderator", physics, chat_id="olympiad-physics", profile_id=math[0])
        for member in [s9[0], s9[1], s9[2], s7[1], s7[2]]:
            self.add_member(physics, "olympiad-physics", member)
        lead = (self.class_teachers["7b"], "class-teacher")
        self.add(
            "create-chat",
            lead,
            chat_id="excursion-7b",
            kind="free",
            class_id="7b",
            title="Экскурсия в Музей Мирового океана",
            purpose="excursion",
        )
        for member in [*s7[:5], *self.parents_of(s7[:3])]:
            self.add_member(lead, "excursion-7b", member)

    def parents_of(self, kids: list[str]) -> list[str]:
        return [parent for parent, own in self.children.items() if set(own) & set(kids)]

    def moderate_week(self) -> None:
        """Days 1-5: removals, blocks, an unblock and warnings under 2.3, 2.4 and 2.5."""
        s5, s7, s9 = self.students.values()
        leaker, rude7 = self.rng.sample(s7[:5], 2)
        who = {f"ct-{c}": (t, "class-teacher") for c, t in self.class_teachers.items()}
        who |= {"math": (self.teachers[3], "teacher"), "russian": (self.teachers[4], "teacher")}
        who |= {"adm-2": (self.admins[1], "administrator")}
        target = {"rude5": self.rng.choice(s5[:4]), "leaker": leaker, "rude7": rude7}
        target |= {"s9-1": s9[1], "s9-2": s9[2], "s9-3": s9[3]}
        target |= {"parent-9v": self.parents_of([s9[1]])[0], "parent-7b": self.parents_of(s7)[0]}
        authority = {"class-teacher": "2.5", "teacher": "2.4", "administrator": "2.3"}
        for day, hour, minute, type_, actor, chat, ground, person, reason in MODERATION_WEEK:
            at = self.day(day, hour, minute)
            fields = {"chat_id": chat, "authority": authority[who[actor][1]], "reason": reason}
            if ground:
                fields["ground"] = ground
            if type_ in {"remove-content", "block-content"}:
                fields |= {"message_id": self.message(chat), "author_id": target[person]}
            else:
                fields["member_id"] = target[person]
            if type_ in {"block-member", "unblock-member"}:
                fields["correlation_id"] = f"{target[person]}-block"
            self.add(type_, who[actor], at, **fields)
            if type_ == "unblock-member":  # back in the class chat after the talk
                later = at + timedelta(minutes=5)
                self.add("add-member", who[actor], later, chat_id=chat, profile_id=target[person])

    def settle_invitations(self) -> None:
        """Day 4: the scheduler expires a lapsed link (the person gets a new one and joins);
        an administrator annuls links unused for four days (2.3); the rest stay stale."""
        minute = 0
        for fate, invitation, chat, person, issuer in self.troubled:
            minute += 10
            at = self.day(4, 7, minute)
            role = "student" if chat.startswith("class-") else "parent"
            if fate == "expire":
                scheduler = (self.id("scheduler"), "system")
                self.add("expire-invitation", scheduler, at, invitation_id=invitation)
                again = self.invite(issuer, chat, role, 7, at + timedelta(minutes=1))
                self.add(
                    "redeem-invitation",
                    (person, role),
                    at + timedelta(minutes=5),
                    invitation_id=again,
                )
            elif fate == "annul":
                self.add(
                    "annul-invitation",
                    (self.admins[1], "administrator"),
                    at,
                    invitation_id=invitation,
                    reason=ANNUL_REASON,
                )

    def handle_access_incidents(self) -> None:
        """4.2.2: a student's report, contained and resolved; a parent's, acknowledged."""
        s9 = self.students["9v"]
        student, security = s9[0], (self.officer, "security-officer")
        chain = {"correlation_id": self.id("incident-1"), "incident_id": self.id("inc-1")}
        self.add(
            "report-unauthorised-access",
            (student, "student"),
            self.day(2, 7, 50),
            **chain,
            affected_profile_id=student,
            elzhur_account_id=f"ej-{student}",
            noticed_at=self.day(1, 22, 10).isoformat(),
            how_noticed="уведомление о входе с незнакомого устройства",
            description="В профиле появились сообщения, которых я не писал",
            told={
                "school-administrator": self.day(2, 7, 40).isoformat(),
                "platform-operator": self.day(2, 7, 45).isoformat(),
            },
        )
        self.add("acknowledge-incident", security, self.day(2, 9), **chain)
        self.add(
            "take-containment-step",
            security,
            self.day(2, 9, 20),
            **chain,
            step="sessions-revoked",
            note="Все активные сеансы профиля завершены",
        )
        self.add(
            "take-containment-step",
            security,
            self.day(2, 9, 40),
            **chain,
            step="password-reset",
            note="Пароль сброшен, ученик задал новый",
        )
        self.add(
            "unlink-account",
            (self.admins[0], "administrator"),
            self.day(2, 9, 50),
            correlation_id=chain["correlation_id"],
            profile_id=student,
            reason="Сдерживание инцидента: привязка к ЭлЖур снята до проверки",
        )
        self.add(
            "take-containment-step",
            security,
            self.day(2, 10),
            **chain,
            step="account-link-removed",
            note="Привязка к ЭлЖур снята администратором",
        )
        self.add(
            "link-account",
            (student, "student"),
            self.day(3, 10),
            correlation_id=chain["correlation_id"],
            profile_id=student,
            elzhur_account_id=f"ej-{student}",
        )
        self.add(
            "resolve-incident",
            security,
            self.day(3, 10, 30),
            **chain,
            findings="Пароль был сохранён на общем компьютере; доступ посторонних прекращён",
        )

        child = s9[3]
        parent = (self.parents_of([child])[0], "parent")
        chain = {"correlation_id": self.id("incident-2"), "incident_id": self.id("inc-2")}
        self.add(
            "report-unauthorised-access",
            parent,
            self.day(4, 21),
            **chain,
            affected_profile_id=child,
            noticed_at=self.day(4, 19, 30).isoformat(),
            how_noticed="ребёнок получил ответы на сообщения, которых не отправлял",
            description=f"Похоже, посторонний знает пароль профиля: {self.names[child]}",
            told={"school-administrator": self.day(4, 20, 50).isoformat()},
        )
        self.add(
            "record-notification",
            parent,
            self.day(5, 8, 15),
            **chain,
            party="platform-operator",
            told_at=self.day(5, 8).isoformat(),
        )
        self.add("acknowledge-incident", (self.admins[1], "administrator"), self.day(5, 9), **chain)
