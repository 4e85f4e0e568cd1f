"""A member's export holds their consent history (every event, with the notice hash they
were shown) and the signed receipts of their grants and withdrawals, which verify offline."""

from __future__ import annotations

import json
from datetime import timedelta

from parrain.consent.receipts import verify_receipt
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.crypto import verification_keys
from parrain.privacy import service as privacy
from tests.consent import consents
from tests.referrals.programme import KEYS


def test_the_export_lists_every_consent_event_and_receipt(
    database: Database, clock: FrozenClock
) -> None:
    programme = consents.launch(database, clock)
    member_id = programme.enrol("ann").member_id
    campaign_id = programme.campaign.id
    notice = consents.show(database, clock, member_id, campaign_id).notice
    granted = consents.grant(database, clock, member_id, campaign_id)
    consents.refuse(database, clock, member_id, campaign_id, channel="web")
    clock.advance(timedelta(hours=1))
    withdrawn = consents.withdraw(database, clock, member_id, campaign_id)

    export = database.run(
        lambda s: privacy.export_member(
            session=s, member_id=member_id, keys=KEYS, actor="t", clock=clock
        )
    )

    assert [(e.action, e.channel) for e in export.consents] == [
        ("shown", "app"),
        ("shown", "social"),
        ("shown", "web"),
        ("granted", "social"),
        ("refused", "web"),
        ("withdrawn", "social"),
    ]
    assert {e.notice_sha256 for e in export.consents} == {notice.sha256}
    grant = export.consents[3]
    assert grant.id == granted.event.id
    assert grant.method == "switch:ad_photo:on"
    assert grant.language == "en"
    assert grant.expires_at == granted.event.expires_at
    assert [(r.event_id, r.action) for r in export.receipts] == [
        (granted.event.id, "granted"),
        (withdrawn.event.id, "withdrawn"),
    ]
    keys = verification_keys(consents.SIGNING_KEY)
    for record in export.receipts:
        document = json.dumps({"receipt": record.receipt, "jws": record.jws})
        assert verify_receipt(document, keys).receipt.event_id == record.event_id
    # Machine readable: the whole export survives a JSON round trip.
    assert type(export).model_validate_json(export.model_dump_json()) == export
