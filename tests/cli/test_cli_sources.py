"""Sources from the CLI: ``record`` signs or takes signed envelopes; ``source`` manages keys."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cli_helpers import Cli, command, max_position, register
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from sferum_audit.application.authentication import public_key_text, sign
from sferum_audit.application.local_sources import local_source_id
from sferum_audit.application.service import AuditLog


def new_class(school: str, n: int) -> str:
    return command(
        f"{school}-c{n}", "create-class", school, f"{school}-adm", "administrator",
        class_id=f"c{n}", name=f"{n}А",
    )  # fmt: skip


def envelope(source: str, key: Ed25519PrivateKey, text: str, at: datetime | None = None) -> str:
    signature = sign(source, key, text.encode(), at or datetime.now(UTC))
    return json.dumps(
        {
            "source": signature.source_id,
            "timestamp": signature.timestamp,
            "signature": signature.signature,
            "command": text,
        }
    )


def operator_key_id(cli: Cli) -> str:
    return cli("operator-key").stdout.split()[3].rstrip(":")


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "commands.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sources_of(app: AuditLog, command_id: str) -> set[str | None]:
    """The sources named by every event the command recorded (its receipt included)."""
    events = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(1, 10_000)]
    return {e.ctx.source_id for e in events if e.ctx.command_id == command_id}


def test_record_signs_plain_lines_with_the_local_source_it_registers_on_first_use(
    cli: Cli, audit_log: AuditLog, unique: str, tmp_path: Path
) -> None:
    result = cli("record", str(write(tmp_path, register(unique), new_class(unique, 5))))

    assert result.exit_code == 0, result.output
    source = audit_log.source(local_source_id(unique))
    assert source is not None
    assert source.school_id == unique
    assert sources_of(audit_log, f"{unique}-c5") == {local_source_id(unique)}
    assert sources_of(audit_log, f"{unique}-1") == {f"operator:{operator_key_id(cli)}"}
    listed = json.loads(cli("source", "list", "--format", "json").stdout)
    assert [(s["source_id"], s["status"]) for s in listed] == [(local_source_id(unique), "active")]


def test_record_takes_envelopes_signed_by_a_registered_source(
    cli: Cli, audit_log: AuditLog, unique: str, tmp_path: Path
) -> None:
    cli("record", str(write(tmp_path, register(unique))))
    key_file = tmp_path / "publisher.pem"
    made = cli("source", "new-key", str(key_file))
    assert made.exit_code == 0, made.output
    public_key = made.stdout.strip()
    assert len(base64.b64decode(public_key)) == 32
    assert key_file.stat().st_mode & 0o777 == 0o600
    registered = cli(
        "source", "register", f"pub/{unique}", "--school", unique, "--public-key", public_key
    )
    assert registered.exit_code == 0, registered.output
    key = load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)

    result = cli(
        "record", str(write(tmp_path, envelope(f"pub/{unique}", key, new_class(unique, 5))))
    )

    assert result.exit_code == 0, result.output
    assert sources_of(audit_log, f"{unique}-c5") == {f"pub/{unique}"}


def test_record_refuses_each_forged_envelope_by_line_and_records_nothing(
    cli: Cli, audit_log: AuditLog, unique: str, tmp_path: Path
) -> None:
    cli("record", str(write(tmp_path, register(unique), new_class(unique, 1))))
    key = Ed25519PrivateKey.generate()
    cli(
        "source", "register", f"pub/{unique}", "--school", unique,
        "--public-key", public_key_text(key.public_key()),
    )  # fmt: skip
    before = max_position(audit_log)
    genuine = envelope(f"pub/{unique}", key, new_class(unique, 2))
    moved = json.loads(genuine) | {"command": new_class(unique, 3)}
    lines = [
        envelope(
            f"pub/{unique}", key, new_class(unique, 4), datetime.now(UTC) - timedelta(hours=1)
        ),
        json.dumps(moved),
        envelope(f"pub/{unique}", Ed25519PrivateKey.generate(), new_class(unique, 5)),
        envelope("nobody", key, new_class(unique, 6)),
        json.dumps({"signature": "x", "command": new_class(unique, 7)}),
        envelope(f"pub/{unique}", key, register(f"{unique}-other")),
    ]

    result = cli("record", str(write(tmp_path, *lines)))

    assert result.exit_code == 1
    assert max_position(audit_log) == before
    said = [line.split(": ", 2) for line in result.stderr.splitlines()]
    assert [(where, code) for where, code, _ in said] == [
        ("line 1", "signature-expired"),
        ("line 2", "signature-invalid"),
        ("line 3", "signature-invalid"),
        ("line 4", "source-unknown"),
        ("line 5", "invalid-envelope"),
        ("line 6", "operator-signature-required"),
    ]


def test_a_revoked_local_source_makes_the_friendly_commands_refuse(
    cli: Cli, audit_log: AuditLog, loaded_school: str
) -> None:
    revoked = cli(
        "source", "revoke", local_source_id(loaded_school), "--school", loaded_school,
        "--reason", "the workstation was lost",
    )  # fmt: skip
    assert revoked.exit_code == 0, revoked.output
    before = max_position(audit_log)

    result = cli(
        "moderate", "warn", "--school", loaded_school, "--chat", "class-7b",
        "--moderator", f"{loaded_school}-t-1", "--ground", "4.2.4",
        "--member", f"{loaded_school}-s-09", "--reason", "Грубость",
    )  # fmt: skip

    assert result.exit_code == 1
    assert result.stderr.startswith("refused: source-revoked: ")
    assert max_position(audit_log) == before


def test_rotating_the_local_source_to_another_key_stops_the_old_one(
    cli: Cli, audit_log: AuditLog, loaded_school: str
) -> None:
    other = public_key_text(Ed25519PrivateKey.generate().public_key())
    rotated = cli(
        "source", "rotate", local_source_id(loaded_school), "--school", loaded_school,
        "--public-key", other,
    )  # fmt: skip
    assert rotated.exit_code == 0, rotated.output

    result = cli(
        "report-access", "--school", loaded_school, "--reporter", f"{loaded_school}-s-09",
        "--noticed-at", "2024-12-02T10:00:00+02:00", "--how", "чужой вход",
        "--description", "кто-то вошёл",
    )  # fmt: skip

    assert result.exit_code == 1
    assert result.stderr.startswith("refused: signature-invalid: ")


def test_operator_key_prints_the_trusted_key_and_says_when_the_local_one_is_not(
    cli: Cli,
) -> None:
    trusted = cli("operator-key")
    assert trusted.exit_code == 0, trusted.output
    assert trusted.stdout.startswith("trusted operator key ")

    elsewhere = public_key_text(Ed25519PrivateKey.generate().public_key())
    configured = cli("operator-key", SFERUM_AUDIT_OPERATOR_PUBLIC_KEYS=elsewhere)

    assert elsewhere in configured.stdout
    assert "is NOT trusted by this configuration" in configured.stderr


def test_register_school_is_refused_when_the_local_operator_key_is_not_the_trusted_one(
    cli: Cli, audit_log: AuditLog, unique: str, tmp_path: Path
) -> None:
    elsewhere = public_key_text(Ed25519PrivateKey.generate().public_key())

    result = cli(
        "record",
        str(write(tmp_path, register(unique))),
        SFERUM_AUDIT_OPERATOR_PUBLIC_KEYS=elsewhere,
    )

    assert result.exit_code == 1
    assert result.stderr.startswith("line 1: signature-invalid: ")
    assert max_position(audit_log) == 0
