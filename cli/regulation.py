"""``sferum-audit regulation``: the authorities and grounds the log records, in the
order's own words.

The school's order (МАОУ СОШ № 58 г. Калининграда, приказ от 25.11.2024 № 1065/1-о)
adopts rules for school chats on Sferum. Every moderation action in the log names the
section that empowered it (``authority``: 2.3, 2.4, 2.5) and the rule it enforces
(``ground``: 4.2.1-4.2.6, ``law``, ``third-party-rights``); the other roles (2.2, 2.7,
2.8) are the ``actor.role`` values of the commands. This module is the product's copy of
those codes with what each allows and the order's wording; ``docs/regulation.md`` is the
same in prose. A test keeps both in step with ``domain.regulation``.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import asdict, dataclass
from typing import Annotated, Final

import typer

from sferum_audit.cli.output import (
    ColumnsOption,
    Listing,
    OutputFormat,
    WideOption,
    console_width,
)

ORDER: Final = (
    "МАОУ СОШ № 58 г. Калининграда, приказ от 25.11.2024 № 1065/1-о «Об утверждении "
    "Положения о порядке применения сервисов взаимодействия педагогических работников с "
    "обучающимися и законными представителями…»"
)


@dataclass(frozen=True)
class Code:
    """One code of the regulation: what it is, who, what it allows in the log, and the
    order's words."""

    code: str
    kind: str  # "authority" (a role and its powers) or "ground" (a rule a moderator enforces)
    title_ru: str
    title_en: str
    allows: str
    role: str  # the actor.role a command uses with it ("" for grounds)
    wording: str


CODES: Final[tuple[Code, ...]] = (
    Code(
        "2.2", "authority", "администрация школы", "school administration",
        "registers the school on the platform by the order that appoints its first "
        "platform administrator (register-school); controls how the profile is used",
        "school-administration",
        "назначает администратора платформы из числа педагогических работников "
        "образовательной организации; … осуществляет контроль по использованию учебного "
        "профиля в VK-мессенджере участниками образовательных отношений",
    ),
    Code(
        "2.3", "authority", "администратор ИКОП «Сферум»", "platform administrator",
        "everything school-wide: appoints more administrators from the teaching staff, "
        "creates classes and chats, assigns class teachers, admits and moves pupils and "
        "staff, issues invitation links with a role and annuls unused ones for security, "
        "moderates every chat of the school, reports statistics to the administration",
        "administrator",
        "назначает дополнительных администраторов ИКОП «Сферум» из числа присоединившихся "
        "на платформу педагогических работников; … создаёт структуру образовательной "
        "организации…; создаёт и направляет … ссылки-приглашения … в соответствующей "
        "пользовательской роли; прикрепляет педагогических работников, выполняющих "
        "должностные обязанности классных руководителей…; редактирует информацию, "
        "связанную с движением обучающихся и педагогических работников; аннулирует не "
        "востребованные ссылки-приглашения … с целью обеспечения информационной "
        "безопасности участников образовательных отношений; доводит до сведения "
        "администрации … статистические данные по использованию платформы",
    ),
    Code(
        "2.4", "authority", "педагогический работник (учитель-предметник)", "teacher",
        "links their ElZhur account; creates chats and controls those they created, own "
        "or moderate; removes and blocks content there that breaks the law or third "
        "parties' rights (grounds law, third-party-rights, and the rules of 4.2)",
        "teacher",
        "несёт ответственность за модерацию и блокировку контента, размещённого на "
        "странице подконтрольного ему канала/чата, принимает меры по удалению "
        "соответствующих материалов … в случае появления контента, который противоречит "
        "действующему законодательству Российской Федерации и/или нарушает права и "
        "законные интересы третьих лиц",
    ),
    Code(
        "2.5", "authority", "классный руководитель", "class teacher",
        "controls the class chat and parents' chat of their classes and their own chats; "
        "moderates and blocks content there; the only authority that warns a member "
        "about liability (warn-about-liability)",
        "class-teacher",
        "регламентирует правила поведения обучающихся в сообществах учебного профиля и "
        "предупреждает о мерах ответственности за нарушение действующего законодательства; "
        "… несёт ответственность за модерацию и блокировку контента, размещённого на "
        "странице подконтрольного ему канала/чата",
    ),
    Code(
        "2.7", "authority", "обучающийся", "student",
        "has a profile linked to one ElZhur account, takes part in class and subject "
        "chats, reports unauthorised access to their own account; moderates nothing",
        "student",
        "создаёт учебный профиль на образовательной платформе, связывает свою учетную "
        "запись в ЭлЖуре с учебным профилем ИКОП «Сферум»; участвует в образовательной "
        "коммуникации, осуществляемой в чате класса и чатах по учебным дисциплинам",
    ),
    Code(
        "2.8", "authority", "родитель (законный представитель)", "parent or guardian",
        "has a profile linked to one ElZhur account, takes part in class chats, reports "
        "unauthorised access to their child's account; moderates nothing",
        "parent",
        "создаёт учебный профиль на образовательной платформе, связывает свою учетную "
        "запись в ЭлЖуре с учебным профилем ИКОП «Сферум»; участвует в образовательной "
        "коммуникации, осуществляемой в чате класса и чатах по учебным дисциплинам",
    ),
    Code(
        "4.2.1", "ground", "ложные данные о себе", "false data about oneself",
        "content or a member may be acted on for false data given when registering",
        "",
        "исключить предоставление ложных данных о себе при регистрации учебного профиля "
        "в ИКОП «Сферум»",
    ),
    Code(
        "4.2.2", "ground", "несанкционированный доступ к аккаунту",
        "unauthorised access to an account",
        "the holder (or a parent for a child) reports it to the school's administrator and "
        "the platform operator (report-access); security staff acknowledge, contain, "
        "resolve or dismiss it (incident ...); also a ground of moderation",
        "",
        "информировать администратора образовательной организации, а также оператора "
        "ИКОП «Сферум», о несанкционированном доступе к аккаунту образовательной платформы",
    ),
    Code(
        "4.2.3", "ground", "доступ третьих лиц к аккаунту", "account shared with others",
        "acting on offers or posts that hand one's account to someone else",
        "",
        "не предоставлять третьим лицам доступ к своему аккаунту",
    ),
    Code(
        "4.2.4", "ground", "грубость и оскорбления", "rudeness and insults",
        "removing, blocking and warning for obscene language or insults of participants",
        "",
        "выражать свои мысли в вежливой форме, исключить использование ненормированной "
        "лексики и оскорблений других участников образовательного процесса",
    ),
    Code(
        "4.2.5", "ground", "нарушение прав других и закона", "others' rights, the law",
        "acting on posts that may break other people's rights and interests, or Russian "
        "or international law",
        "",
        "не размещать в чатах информацию и объекты, которые могут нарушить права и "
        "интересы других лиц, соблюдать действующее российское и международное "
        "законодательство",
    ),
    Code(
        "4.2.6", "ground", "чужие персональные данные", "other people's personal data",
        "acting on unlawful collection or processing of other people's personal data (the "
        "order's text drops the word «не»; the meaning is plain)",
        "",
        "осуществлять незаконный сбор и обработку персональных данных других лиц",
    ),
    Code(
        "law", "ground", "противоречит законодательству РФ", "contradicts Russian law",
        "the ground 2.4 and 2.5 name for removing content that breaks the law",
        "",
        "контента, который противоречит действующему законодательству Российской Федерации",
    ),
    Code(
        "third-party-rights", "ground", "права третьих лиц", "rights of third parties",
        "the ground 2.4 and 2.5 name for removing content that breaks the rights and "
        "lawful interests of third parties",
        "",
        "нарушает права и законные интересы третьих лиц",
    ),
)  # fmt: skip

REGULATION = Listing(
    "Regulation (приказ № 1065/1-о)",
    ("code", "kind", "title_ru", "title_en", "role", "allows", "wording"),
    default=("code", "title_ru", "allows"),
    labels={"title_ru": "в приказе", "title_en": "in English", "allows": "in the log"},
    empty="no such code",
)


def regulation_command(
    codes: Annotated[
        list[str] | None,
        typer.Argument(help="Codes to show, e.g. 2.5 4.2.4 (default: all).", show_default=False),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="authority (who) or ground (what for).", show_default=False),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table, json, jsonl or csv.")
    ] = OutputFormat.table,
    columns: ColumnsOption = None,
    wide: WideOption = False,
) -> None:
    """The authorities (2.2-2.8) and grounds (4.2.1-4.2.6, law, third-party-rights) the
    log records: what each allows, and the order's wording (--wide, or name codes)."""
    known = [c.code for c in CODES]
    for code in codes or []:
        if code not in known:
            raise typer.BadParameter(f"{code!r} is no code; valid: {', '.join(known)}")
    if kind is not None and kind not in {"authority", "ground"}:
        raise typer.BadParameter(f"{kind!r}; valid: authority, ground", param_hint="--kind")
    rows = [
        asdict(c)
        for c in CODES
        if (not codes or c.code in codes) and (kind is None or c.kind == kind)
    ]
    blocks = False
    if fmt is OutputFormat.table:
        typer.echo("\n".join(textwrap.wrap(ORDER, width=console_width(sys.stdout))))
        if codes and not columns:  # a few named codes: everything about each, as blocks
            wide = blocks = True
    REGULATION.emit(rows, fmt, columns=columns, wide=wide, blocks=blocks)


def register(app: typer.Typer) -> None:
    """Adds ``regulation``."""
    app.command("regulation")(regulation_command)
