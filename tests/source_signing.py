"""Commands as a school's publisher sends them: signed by the local CLI source, which the
tests provision for their schools as trusted code, straight into the store (no receipt,
so the tests' counts of receipts and results stay those of their own commands)."""

from __future__ import annotations

from datetime import UTC, datetime

from sferum_audit.application.authentication import OPERATOR_COMMANDS, Signature
from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.local_sources import OPERATOR_ACTOR, LocalSigner, local_source_id
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.source import Source


def provision_local_source(app: AuditLog, settings: Settings, school_id: str) -> LocalSigner:
    """Registers the local source for ``school_id`` (which need not exist yet) unless it is
    there; returns the signer that signs as it."""
    signer = LocalSigner.from_settings(settings)
    source_id = local_source_id(school_id)
    if app.source(source_id) is None:
        ctx = CommandContext(
            actor_id=OPERATOR_ACTOR["id"],
            actor_role=OPERATOR_ACTOR["role"],
            occurred_at=datetime.now(UTC),
            command_id=f"test-provision/{source_id}",
            correlation_id=f"test-provision/{source_id}",
        )
        source = Source.register(
            ctx,
            school_id=school_id,
            source_id=source_id,
            kind="integration",
            person_id=None,
            public_key=signer.local_public_key,
            registrar_is_administrator=False,
        )
        app.save(source)
    return signer


def signed_headers(
    signer: LocalSigner, payload: bytes, school_id: str, command_type: str
) -> dict[str, str]:
    return signer.signature(payload, school_id, command_type).as_headers()


class ProvisioningSigner:
    """A publisher's signer that provisions each school's local source the first time it
    signs for that school (a ``consumers.publisher.CommandSigner``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.signer = LocalSigner.from_settings(settings)
        self.provisioned: set[str] = set()

    def signature(self, body: bytes, school_id: str, command_type: str) -> Signature:
        if command_type not in OPERATOR_COMMANDS and school_id not in self.provisioned:
            app = build_audit_log(self.settings)
            try:
                provision_local_source(app, self.settings, school_id)
            finally:
                app.close()
            self.provisioned.add(school_id)
        return self.signer.signature(body, school_id, command_type)
