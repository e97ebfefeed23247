"""Erasure of a person's personal data: record it, then destroy their key.

The order matters: the erasure event is saved first, so the log never lacks the record of
a destruction that happened; destroying a key twice is harmless, so a failed run is
simply run again with the same ``command_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sferum_audit.application.commands import ErasePersonalData
from sferum_audit.application.service import AuditLog, CommandResult


@dataclass(frozen=True, slots=True)
class ErasureOutcome:
    """What ``erase`` did: the recorded command result and whether a key was destroyed now."""

    result: CommandResult
    key_destroyed_now: bool


def erase(app: AuditLog, command: ErasePersonalData) -> ErasureOutcome:
    """Records the erasure and destroys the subject's key; refused commands destroy nothing."""
    result = app.handle(command)
    if not result.accepted:
        return ErasureOutcome(result, key_destroyed_now=False)
    destroyed = app.subject_keys.destroy(command.subject_id)
    return ErasureOutcome(result, key_destroyed_now=destroyed)
