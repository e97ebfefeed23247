"""The base of every rule violation the domain reports.

Each aggregate module defines its own subclasses next to the rules that raise them. A
``DomainError`` carries a stable, kebab-case ``code`` (for machines: CLI output, NATS
replies, rejection records) and a message written for the moderator or auditor who sent
the command.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command broke a rule of the regulation or of the model; nothing was recorded."""

    code: str = "domain-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidValue(DomainError):
    """A field holds a value the regulation does not know (an unknown ground, role, ...)."""

    code = "invalid-value"


class ActorNotPermitted(DomainError):
    """The actor does not hold the role or authority the command needs."""

    code = "actor-not-permitted"
