"""The destruction act and the log extract that document an erasure (152-FZ).

Roskomnadzor Order No. 179 (28.10.2022) asks an operator who destroys personal data to
confirm it with an act and an extract from the information system's event log, and to
keep both for three years. The act names the operator, the data subject (here by the
pseudonymous id the log knows them by), who destroyed the data, which categories, the
information system, how, why and when; the extract lists every logged event that
concerns the subject. Neither holds personal data: positions, event types, times, ids.

The destruction itself (destroying the subject's key after recording the erasure) is
``application.erasure.erase``; this module only reads the log and writes the documents.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from sferum_audit.domain.personal_data import PERSONAL_DATA_CATEGORIES, PERSONAL_FIELDS

__all__ = [
    "DestructionAct",
    "ExtractEntry",
    "act_text",
    "file_stem",
    "log_extract",
    "write_act",
    "write_act_once",
]

SYSTEM_NAME = "sferum-audit: журнал модерации и аудита школьных чатов ИКОП «Сферум»"
METHOD = (
    "Криптографическое уничтожение: ключ шифрования AES-256-GCM субъекта, которым "
    "зашифрованы его персональные данные в журнале, безвозвратно удалён; зашифрованные "
    "записи остаются в журнале (его целостность доказуема), но прочитать их невозможно "
    "(crypto-shredding: the subject's AES-256-GCM key was destroyed)."
)
RETENTION_YEARS = 3
_ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


@dataclass(frozen=True, slots=True)
class ExtractEntry:
    """One logged event that concerns the subject (no personal data in it)."""

    position: int
    event_type: str
    aggregate_id: str
    version: int
    recorded_at: str
    occurred_at: str | None
    actor_id: str | None
    subject_appears_as: list[str]
    erased_fields: list[str]


@dataclass
class DestructionAct:
    """The act: every item Order No. 179 asks for, plus where the log proves it."""

    act_id: str
    operator: dict[str, str]
    subject_pseudonym: str
    requested_by: str
    requester_relation: str
    destroyed_by: dict[str, str]
    categories: list[str]
    information_system: str
    method: str
    reason: str
    destroyed_at: str
    keep_until: str
    erasure_event: dict[str, Any]
    key_destroyed_now: bool
    integrity: dict[str, Any] = field(default_factory=dict)
    log_extract: list[ExtractEntry] = field(default_factory=list)
    # Other records whose free text named the person: their text keys were destroyed.
    free_text_records: list[dict[str, Any]] = field(default_factory=list)
    # Messages erased from the service's NATS streams (stream, sequence, subject).
    messages_erased: list[dict[str, Any]] = field(default_factory=list)
    # Log positions of refused commands whose sealed payloads named the person.
    rejected_payloads: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the legal references first."""
        return {
            "document": "Акт об уничтожении персональных данных (personal data destruction act)",
            "legal_basis": "Федеральный закон № 152-ФЗ, ст. 21; Приказ Роскомнадзора № 179 "
            "от 28.10.2022",
            **asdict(self),
        }


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _appearances(state: dict[str, Any], subject_id: str) -> list[str]:
    found = []
    for name, value in state.items():
        if name in _ENVELOPE:
            continue
        if name == "ctx":
            if getattr(value, "actor_id", None) == subject_id:
                found.append("ctx.actor_id")
            continue
        in_collection = isinstance(value, list | tuple | set | frozenset | dict) and (
            subject_id in value
        )
        if value == subject_id or in_collection:
            found.append(name)
    return found


def log_extract(
    app: Application[UUID], subject_id: str, page_size: int = 2000
) -> list[ExtractEntry]:
    """Every event in the log whose ids name ``subject_id``, in log order.

    The stored bytes are searched for the id first (cheap), and only the events that
    contain it are decoded and checked field by field, so this streams any log size.
    """
    needles = {subject_id.encode("utf-8"), json.dumps(subject_id)[1:-1].encode("ascii")}
    return list(_extract(app, subject_id, needles, page_size))


def _extract(
    app: Application[UUID], subject_id: str, needles: set[bytes], page_size: int
) -> Iterator[ExtractEntry]:
    recorder = app.recorder
    head = int(recorder.max_notification_id() or 0)
    position = 1
    while position <= head:
        page = recorder.select_notifications(position, page_size, stop=head)
        if not page:
            return
        for notification in page:
            if not any(needle in notification.state for needle in needles):
                continue
            event: Any = app.mapper.to_domain_event(notification)
            state = dict(vars(event))
            found = _appearances(state, subject_id)
            if not found:
                continue
            event_type = notification.topic.rsplit(":", 1)[-1]
            spec = PERSONAL_FIELDS.get(event_type)
            erased = (
                [name for name in spec.fields if state.get(name) is not None]
                if spec is not None and state.get(spec.subject_field) == subject_id
                else []
            )
            ctx = state.get("ctx")
            yield ExtractEntry(
                position=notification.id,
                event_type=event_type,
                aggregate_id=str(notification.originator_id),
                version=notification.originator_version,
                recorded_at=_iso(state.get("timestamp")) or "",
                occurred_at=_iso(getattr(ctx, "occurred_at", None)),
                actor_id=getattr(ctx, "actor_id", None),
                subject_appears_as=found,
                erased_fields=erased,
            )
        position = page[-1].id + 1


def school_name(app: Application[UUID], school_id: str) -> str:
    """The school's registered name, or its id if the log has no such school."""
    from sferum_audit.domain.school import School

    try:
        school: Any = app.repository.get(School.create_id(school_id))
    except Exception:  # any failure: fall back to the id
        return school_id
    return str(getattr(school, "name", school_id))


def keep_until(day: date) -> str:
    """Three years after ``day`` (28 Feb for 29 Feb)."""
    try:
        return day.replace(year=day.year + RETENTION_YEARS).isoformat()
    except ValueError:
        return day.replace(year=day.year + RETENTION_YEARS, day=28).isoformat()


def new_act(
    *,
    act_id: str,
    school_id: str,
    operator_name: str,
    subject_id: str,
    requested_by: str,
    administrator_id: str,
    reason: str,
    destroyed_at: datetime,
    erasure_event: dict[str, Any],
    key_destroyed_now: bool,
    system: str,
    extract: list[ExtractEntry],
) -> DestructionAct:
    """Fill the act from the erasure's facts."""
    relation = (
        "субъект персональных данных (the data subject)"
        if requested_by == subject_id
        else "родитель (законный представитель) субъекта (a parent or legal representative)"
    )
    return DestructionAct(
        act_id=act_id,
        operator={"school_id": school_id, "name": operator_name},
        subject_pseudonym=subject_id,
        requested_by=requested_by,
        requester_relation=relation,
        destroyed_by={
            "id": administrator_id,
            "role": "администратор ИКОП «Сферум» (2.3), platform administrator",
        },
        categories=list(PERSONAL_DATA_CATEGORIES),
        information_system=system,
        method=METHOD,
        reason=reason,
        destroyed_at=destroyed_at.astimezone(UTC).isoformat(),
        keep_until=keep_until(destroyed_at.astimezone(UTC).date()),
        erasure_event=erasure_event,
        key_destroyed_now=key_destroyed_now,
        log_extract=extract,
    )


def act_text(act: DestructionAct) -> str:
    """The act as a readable text document (Russian, with English glosses)."""
    lines = [
        "АКТ ОБ УНИЧТОЖЕНИИ ПЕРСОНАЛЬНЫХ ДАННЫХ № " + act.act_id,
        "(personal data destruction act; 152-ФЗ ст. 21, Приказ Роскомнадзора № 179)",
        "",
        f"Оператор (operator): {act.operator['name']} (id {act.operator['school_id']})",
        f"Субъект (data subject, pseudonym): {act.subject_pseudonym}",
        f"Запрос (requested by): {act.requested_by} — {act.requester_relation}",
        f"Уничтожил (destroyed by): {act.destroyed_by['id']}, {act.destroyed_by['role']}",
        "Категории персональных данных (categories):",
        *[f"  - {category}" for category in act.categories],
        f"Информационная система (system): {act.information_system}",
        f"Способ (method): {act.method}",
        f"Причина (reason): {act.reason}",
        f"Дата уничтожения (date): {act.destroyed_at}",
        f"Хранить до (keep until): {act.keep_until}",
        "",
        "Событие журнала об уничтожении (erasure event in the log): "
        f"позиция {act.erasure_event.get('position')}, {act.erasure_event.get('type')}",
    ]
    if act.integrity:
        lines += [
            "Доказательство целостности (integrity): контрольная точка размера "
            f"{act.integrity.get('tree_size')}, журнал {act.integrity.get('origin')}, "
            f"корень {act.integrity.get('root')}",
        ]
        if act.integrity.get("inclusion_proof"):
            proof = act.integrity["inclusion_proof"]
            lines.append(f"Доказательство включения (proof file): {proof}")
    lines += [
        "",
        f"ВЫГРУЗКА ИЗ ЖУРНАЛА (log extract): {len(act.log_extract)} событий, касающихся субъекта",
        "позиция | тип события | записано | произошло | инициатор | субъект как | стёртые поля",
    ]
    for entry in act.log_extract:
        lines.append(
            f"{entry.position} | {entry.event_type} | {entry.recorded_at} | "
            f"{entry.occurred_at or '-'} | {entry.actor_id or '-'} | "
            f"{', '.join(entry.subject_appears_as)} | {', '.join(entry.erased_fields) or '-'}"
        )
    lines += [
        "",
        "ЗАПИСИ СО СВОБОДНЫМ ТЕКСТОМ, НАЗЫВАВШИМ СУБЪЕКТА (free text naming the subject, "
        f"shredded): {len(act.free_text_records)}",
        *[
            f"  позиция {r.get('position')} | {r.get('event_type')} | поле {r.get('field')}"
            for r in act.free_text_records
        ],
        f"СООБЩЕНИЯ NATS, СТЁРТЫЕ ИЗ ПОТОКОВ (NATS messages erased): {len(act.messages_erased)}",
        *[
            f"  {m.get('stream')} #{m.get('sequence')} {m.get('subject')}"
            if "problem" not in m
            else f"  не проверено (not checked): {m['problem']}"
            for m in act.messages_erased
        ],
        "ОТКАЗАННЫЕ КОМАНДЫ, ИХ СОДЕРЖИМОЕ НЕЧИТАЕМО (refused payloads now unreadable): "
        + (", ".join(str(p) for p in act.rejected_payloads) or "-"),
    ]
    lines += ["", "Подпись ответственного лица (signature): ____________________", ""]
    return "\n".join(lines)


def file_stem(act_id: str) -> str:
    """The act's id as a safe file name (no separators, no leading dot)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in act_id)


def write_act_once(folder: Path, act: DestructionAct) -> tuple[Path, bool]:
    """Writes the act unless one with its id is there; returns its JSON path and whether
    this call wrote it. The JSON appears whole or not at all (hard-linked from a finished
    temporary file, which fails if it exists), so when two instances finish the same
    erasure at once the first wins; only the winner then writes the readable ``.txt``."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = file_stem(act.act_id)
    json_path = folder / f"{safe}.json"
    tmp = folder / f".{safe}.json.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(act.as_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    try:
        os.link(tmp, json_path)
    except FileExistsError:
        return json_path, False
    finally:
        tmp.unlink()
    text_path = folder / f"{safe}.txt"
    text_tmp = text_path.with_name(f".{text_path.name}.{os.getpid()}.tmp")
    text_tmp.write_text(act_text(act), encoding="utf-8")
    os.replace(text_tmp, text_path)
    return json_path, True


def write_act(folder: Path, act: DestructionAct) -> tuple[Path, Path]:
    """Write ``<act_id>.json`` and ``<act_id>.txt`` into ``folder``; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = file_stem(act.act_id)
    json_path = folder / f"{safe}.json"
    text_path = folder / f"{safe}.txt"
    for path, content in (
        (json_path, json.dumps(act.as_dict(), indent=2, ensure_ascii=False) + "\n"),
        (text_path, act_text(act)),
    ):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    return json_path, text_path
