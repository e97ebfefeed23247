"""A key destroyed by one process stops being used by another, without a restart."""

from __future__ import annotations

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import parse_command
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.settings import Settings
from sferum_audit.domain.personal_data import ERASED


def test_key_destroyed_elsewhere_is_forgotten_by_the_next_batch(
    settings: Settings, unique: str
) -> None:
    writer = build_audit_log(settings)
    service = build_audit_log(settings)
    commands = [parse_command(c) for c in sample_school(f"s-{unique}")]
    writer.handle_batch(commands)
    removal = next(c for c in commands if c.type == "remove-content")
    subject = removal.author_id
    assert service.subject_keys.key_for_reading(subject) is not None

    writer.subject_keys.destroy(subject)
    service.handle_batch([])  # any batch looks for keys destroyed elsewhere first

    assert service.subject_keys.key_for_reading(subject) is None
    position = service.handle(removal).events[0].position
    stored = next(iter(service.recorder.select_notifications(position, 1)))
    assert service.mapper.to_domain_event(stored).reason == ERASED
