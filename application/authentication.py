"""Who vouches for a command: Ed25519 signatures of registered sources.

A command arrives as exact bytes with three values beside it (NATS headers, or the fields
of a signed envelope for ``record``):

- ``Sferum-Source``: the id of a registered source (``domain.source``), or ``operator``;
- ``Sferum-Timestamp``: when it was signed, whole seconds since the UNIX epoch;
- ``Sferum-Signature``: base64 of the Ed25519 signature over ``timestamp + "." + body``
  (the webhook convention of Stripe and GitHub: the timestamp is signed with the bytes,
  so an old message cannot be replayed with a fresh timestamp).

The service accepts the command only if the source is registered and not revoked, the
signature verifies under its current key, the timestamp lies within the replay window of
when the message reached the service (for NATS: when JetStream stored it, so a backlog
does not expire), the command is for the source's school, and a person's source asserts
only that person. The deployment operator's keys (configuration, not the log) vouch for
``register-school`` and for managing sources (the bootstrap); ``register-school`` is
accepted from nobody else, and the operator vouches for nothing else.

Each failure is refused with its own code, before the command is looked at further; a
refused command records nothing and is kept in ``rejected`` by the entry point. A replay
inside the window repeats a command id and is answered as a duplicate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sferum_audit.domain.errors import DomainError
from sferum_audit.domain.source import Source

if TYPE_CHECKING:  # the command schema loads with the first command read (see service.py)
    from sferum_audit.application.commands import Command, CommandLimits

SOURCE_HEADER: Final = "Sferum-Source"
TIMESTAMP_HEADER: Final = "Sferum-Timestamp"
SIGNATURE_HEADER: Final = "Sferum-Signature"
SIGNATURE_HEADERS: Final = (SOURCE_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)

OPERATOR_SOURCE: Final = "operator"
# What the deployment operator's key vouches for: a new school, and the school's sources
# (the first one especially: before it, nobody can sign for the school).
OPERATOR_COMMANDS: Final = frozenset(
    {"register-school", "register-source", "rotate-source", "revoke-source"}
)
DEFAULT_WINDOW_SECONDS: Final = 300


class SignatureMissing(DomainError):
    """The command carries no source signature."""

    code = "signature-missing"


class SignatureInvalid(DomainError):
    """The signature is malformed or does not verify over these bytes with the source's key."""

    code = "signature-invalid"


class SignatureExpired(DomainError):
    """The signed timestamp lies outside the replay window."""

    code = "signature-expired"


class UnknownSource(DomainError):
    """No source of that id is registered."""

    code = "source-unknown"


class OperatorSignatureRequired(DomainError):
    """A school is registered only with the deployment operator's signature."""

    code = "operator-signature-required"


class OperatorNotAllowed(DomainError):
    """The operator's key vouches only for registering schools and managing sources."""

    code = "operator-not-allowed"


@dataclass(frozen=True, slots=True)
class Signature:
    """The three values sent beside the bytes, as sent."""

    source_id: str
    timestamp: str
    signature: str

    def as_headers(self) -> dict[str, str]:
        return {
            SOURCE_HEADER: self.source_id,
            TIMESTAMP_HEADER: self.timestamp,
            SIGNATURE_HEADER: self.signature,
        }


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a command arrived with: its exact bytes, their signature (if any), and when it
    reached the service (the reference for the replay window)."""

    body: bytes
    signature: Signature | None
    received_at: datetime


def signature_from_headers(headers: Mapping[str, str] | None) -> Signature | None:
    """The signature values from message headers; ``None`` when none of them is there (a
    partial set is kept, and fails verification with its own message)."""
    headers = headers or {}
    values = [headers.get(name) for name in SIGNATURE_HEADERS]
    if all(value is None for value in values):
        return None
    source, timestamp, signature = (value or "" for value in values)
    return Signature(source, timestamp, signature)


def vouched_command(
    body: bytes,
    signature: Signature | None,
    received_at: datetime,
    limits: CommandLimits | None = None,
) -> Command:
    """The command in ``body`` with the credentials it arrived with, for ``AuditLog`` to
    authenticate (raises ``CommandRejected`` for bytes that are not a command)."""
    from sferum_audit.application.commands import DEFAULT_LIMITS, parse_command

    command = parse_command(body, limits or DEFAULT_LIMITS)
    command._credentials = Credentials(body, signature, received_at)
    return command


# -- signing ---------------------------------------------------------------------------------


def signing_input(timestamp: str, body: bytes) -> bytes:
    """The exact bytes a source signs: ``timestamp + "." + body``."""
    return timestamp.encode("ascii") + b"." + body


def sign(source_id: str, key: Ed25519PrivateKey, body: bytes, now: datetime) -> Signature:
    """A source's signature over ``body`` at ``now``."""
    timestamp = str(int(now.timestamp()))
    raw = key.sign(signing_input(timestamp, body))
    return Signature(source_id, timestamp, base64.b64encode(raw).decode("ascii"))


def public_key_text(key: Ed25519PublicKey) -> str:
    """The form a source's key is registered in: base64 of its 32 raw bytes."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_id(public_key: str) -> str:
    """A short, stable name of a public key (first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(public_key.encode("ascii")).hexdigest()[:16]


def _verifies(public_key: str, signature: Signature, body: bytes) -> bool:
    try:
        raw_key = base64.b64decode(public_key, validate=True)
        raw_signature = base64.b64decode(signature.signature, validate=True)
        Ed25519PublicKey.from_public_bytes(raw_key).verify(
            raw_signature, signing_input(signature.timestamp, body)
        )
    except (binascii.Error, ValueError, UnicodeEncodeError, InvalidSignature):
        return False
    return True


# -- verifying --------------------------------------------------------------------------------


class Authenticator:
    """Checks a command's credentials against the registered sources and the operator keys."""

    def __init__(
        self,
        operator_keys: tuple[str, ...] | Callable[[], tuple[str, ...]] = (),
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        """``operator_keys`` may be given as a function, called the first time an operator
        signature is checked (so that reading the log never creates a key file)."""
        self._operator_keys = operator_keys
        self.window_seconds = window_seconds

    @property
    def operator_keys(self) -> tuple[str, ...]:
        if callable(self._operator_keys):
            self._operator_keys = self._operator_keys()
        return self._operator_keys

    def authenticate(
        self,
        command: Command,
        credentials: Credentials,
        find_source: Callable[[str], Source | None],
    ) -> str:
        """The id of the source that vouches for ``command`` (recorded on its events), or
        the refusal (a ``DomainError`` with its code) that says why none does."""
        signature = credentials.signature
        if signature is None:
            raise SignatureMissing(
                f"the command is not signed: send {', '.join(SIGNATURE_HEADERS)} "
                "(a registered source's Ed25519 signature over timestamp.body)"
            )
        if not signature.source_id or not signature.signature:
            raise SignatureInvalid(f"{', '.join(SIGNATURE_HEADERS)} must all be given")
        signed_at = self._signed_at(signature)
        if signature.source_id == OPERATOR_SOURCE:
            source_id = self._operator(command, signature, credentials.body)
        else:
            source_id = self._registered(command, signature, credentials.body, find_source)
        self._check_window(signed_at, credentials.received_at)
        return source_id

    @staticmethod
    def _signed_at(signature: Signature) -> datetime:
        text = signature.timestamp
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise SignatureInvalid(
                f"{TIMESTAMP_HEADER} must be whole seconds since the UNIX epoch, not {text[:40]!r}"
            )
        return datetime.fromtimestamp(int(text), UTC)

    def _check_window(self, signed_at: datetime, received_at: datetime) -> None:
        skew = abs((received_at - signed_at).total_seconds())
        if skew > self.window_seconds:
            raise SignatureExpired(
                f"signed at {signed_at.isoformat()}, received at {received_at.isoformat()}: "
                f"more than {self.window_seconds} s apart"
            )

    def _operator(self, command: Command, signature: Signature, body: bytes) -> str:
        for public_key in self.operator_keys:
            if _verifies(public_key, signature, body):
                if command.type not in OPERATOR_COMMANDS:
                    raise OperatorNotAllowed(
                        "the deployment operator's key vouches only for "
                        f"{', '.join(sorted(OPERATOR_COMMANDS))}; sign this with a source "
                        f"of school {command.school_id}"
                    )
                return f"{OPERATOR_SOURCE}:{key_id(public_key)}"
        raise SignatureInvalid("the signature does not verify with any deployment operator key")

    @staticmethod
    def _registered(
        command: Command,
        signature: Signature,
        body: bytes,
        find_source: Callable[[str], Source | None],
    ) -> str:
        source = find_source(signature.source_id)
        if source is None:
            raise UnknownSource(f"no source {signature.source_id[:200]!r} is registered")
        source.check_active()
        if not _verifies(source.public_key, signature, body):
            raise SignatureInvalid(
                f"the signature does not verify over these bytes with source "
                f"{source.source_id}'s current key"
            )
        if command.type == "register-school":
            raise OperatorSignatureRequired(
                "a school is registered with the deployment operator's signature "
                f"({SOURCE_HEADER}: {OPERATOR_SOURCE}), not a school's source"
            )
        source.check_may_assert(command.school_id, command.actor.id)
        return source.source_id
