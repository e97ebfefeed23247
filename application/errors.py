"""Errors the application adds to the domain's: things a command names that do not exist."""

from __future__ import annotations

from sferum_audit.domain.errors import DomainError


class UnknownEntity(DomainError):
    """The command names a school, chat, profile, invitation or incident that was never recorded."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} is not recorded")
        self.code = f"unknown-{kind.replace(' ', '-')}"


class AlreadyRecorded(DomainError):
    """Something with this id already exists (a second school, chat, invitation ...)."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} already exists")
        self.code = f"{kind.replace(' ', '-')}-already-exists"
