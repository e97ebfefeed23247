"""Over a real nats-server: forged, unsigned and cross-school commands end in ``rejected``.

An anonymous or foreign publisher reaches the commands subjects (NATS authorization is a
separate layer); what it sends is kept with its code and never enters the log.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from consumer_helpers import fast_options, receipts, rejections, wait_for
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.aio.client import Client

from sferum_audit.application.authentication import public_key_text, sign
from sferum_audit.application.local_sources import LocalSigner
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher, SourceSigner
from sferum_audit.consumers.service import Pipeline

pytestmark = pytest.mark.nats

AT = "2024-12-02T08:00:00+02:00"


@pytest.fixture
async def client(nats_server: EmbeddedNats) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


def command(command_id: str, type_: str, school: str, actor: str, role: str, **fields: Any) -> dict:
    return {
        "command_id": command_id,
        "type": type_,
        "school_id": school,
        "actor": {"id": actor, "role": role},
        "occurred_at": AT,
        **fields,
    }


def new_signer(source_id: str) -> SourceSigner:
    return SourceSigner(source_id, Ed25519PrivateKey.generate())


def public_key(signer: SourceSigner) -> str:
    return public_key_text(signer.key.public_key())


def registration(n: str, school: str, signer: SourceSigner, **fields: Any) -> dict:
    fields = {"kind": "integration"} | fields
    return command(
        n,
        "register-source",
        school,
        "director",
        "school-administration",
        source_id=signer.source_id,
        public_key=public_key(signer),
        **fields,
    )


async def test_forged_unsigned_and_cross_school_commands_are_kept_as_rejections_only(
    nats_server: EmbeddedNats, client: Client, settings: Settings, unique: str
) -> None:
    a, b = f"a-{unique}", f"b-{unique}"
    operator = LocalSigner.from_settings(settings)  # this installation's operator key
    js = client.jetstream()
    as_operator = CommandPublisher(js, nc=client, signer=operator)
    integration, leaked, own = new_signer(f"pub/{a}"), new_signer(f"old/{a}"), new_signer("own")
    stranger = new_signer(f"pub/{a}")  # claims the real source's id with another key

    def school(n: str, sid: str) -> dict:
        return command(
            n, "register-school", sid, "director", "school-administration",
            name="Школа", order_ref="1/1", first_administrator_id=f"adm-{sid}",
        )  # fmt: skip

    def new_class(n: str, sid: str, actor: str | None = None) -> dict:
        actor = actor or f"adm-{sid}"
        return command(n, "create-class", sid, actor, "administrator", class_id=n, name=n)

    accepted = [
        (as_operator, school(f"{unique}-school-a", a)),
        (as_operator, school(f"{unique}-school-b", b)),
        (as_operator, registration(f"{unique}-reg-pub", a, integration)),
        (as_operator, registration(f"{unique}-reg-old", a, leaked)),
        (
            as_operator,
            registration(f"{unique}-reg-own", a, own, kind="person", person_id=f"adm-{a}"),
        ),
        (
            as_operator,
            command(
                f"{unique}-revoke",
                "revoke-source",
                a,
                "director",
                "school-administration",
                source_id=leaked.source_id,
                reason="the key leaked",
            ),
        ),
        (CommandPublisher(js, nc=client, signer=integration), new_class(f"{unique}-ok", a)),
        (CommandPublisher(js, nc=client, signer=own), new_class(f"{unique}-own", a)),
    ]
    unsigned = new_class(f"{unique}-unsigned", a)
    expired = new_class(f"{unique}-expired", a)
    forged = new_class(f"{unique}-forged", a)
    attacks: list[tuple[CommandPublisher, dict, str]] = [
        (CommandPublisher(js, nc=client), unsigned, "signature-missing"),
        (CommandPublisher(js, nc=client, signer=stranger), forged, "signature-invalid"),
        (
            CommandPublisher(js, nc=client, signer=new_signer("nobody")),
            new_class(f"{unique}-unknown", a),
            "source-unknown",
        ),
        (
            CommandPublisher(js, nc=client, signer=leaked),
            new_class(f"{unique}-revoked", a),
            "source-revoked",
        ),
        (
            CommandPublisher(js, nc=client, signer=integration),
            new_class(f"{unique}-cross", b),
            "source-wrong-school",
        ),
        (
            CommandPublisher(js, nc=client, signer=own),
            new_class(f"{unique}-as-other", a, actor="somebody-else"),
            "actor-not-vouched",
        ),
        (
            CommandPublisher(js, nc=client, signer=integration),
            school(f"{unique}-school-c", f"c-{unique}"),
            "operator-signature-required",
        ),
    ]
    options = fast_options(nats_server.url, f"s-{unique}")
    async with Pipeline(settings, options, views=False) as pipeline:
        app = pipeline.app
        assert app is not None
        for publisher, data in accepted:
            await publisher.publish(data)
        # the sources are registered before any attack arrives (partitions run concurrently)
        await wait_for(
            lambda: pipeline.processor is not None and pipeline.processor.settled >= len(accepted),
            60,
            "the accepted commands",
        )
        for publisher, data, _ in attacks:
            await publisher.publish(data)
        # an old signature replayed now, and a valid signature moved onto other bytes
        payload = json.dumps(expired).encode()
        ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
        old = sign(integration.source_id, integration.key, payload, ten_minutes_ago)
        await as_operator.publish_raw(a, "create-class", payload, signature=old)
        genuine = json.dumps(new_class(f"{unique}-genuine", a)).encode()
        moved = integration.signature(genuine, a, "create-class")
        tampered = json.dumps(new_class(f"{unique}-tampered", a, actor="intruder")).encode()
        await as_operator.publish_raw(a, "create-class", tampered, signature=moved)

        total = len(accepted) + len(attacks) + 2
        await wait_for(
            lambda: pipeline.processor is not None and pipeline.processor.settled >= total,
            60,
            "every command settled",
        )
        kept = {r["command_id"]: r["error_code"] for r in rejections(app)}
        recorded = set(receipts(app))

    assert kept == {
        **{data["command_id"]: code for _, data, code in attacks},
        f"{unique}-expired": "signature-expired",
        f"{unique}-tampered": "signature-invalid",
    }
    assert recorded == {data["command_id"] for _, data in accepted}
