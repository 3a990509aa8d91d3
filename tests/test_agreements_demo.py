"""The demo agreements: the four situations people should find after `flask seed-demo`."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from agreements import demo as agreements_demo
from agreements.models import Agreement, AgreementStatus, VersionState
from agreements.queries import awaiting_signature
from agreements.signatures import archive_path, platform_pki
from agreements.signing import verify_pdf
from coop import demo
from coop.auth.models import User
from coop.extensions import db
from coop.orgs.models import Organization

pytestmark = pytest.mark.usefixtures("fast_keys")


def test_demo_agreements_are_signed_for_real_and_idempotent(app):
    demo.seed_demo(echo=lambda _m: None, domains=False)
    names = {o.name: o for o in db.session.execute(sa.select(Organization)).scalars()}
    orgs = {key: names[name] for key, name, *_rest in demo.DEMO_ORGS}
    users = {u.username: u for u in db.session.execute(sa.select(User)).scalars()}
    agreements_demo.seed_demo_step(orgs, users, echo=lambda _m: None)
    agreements_demo.seed_demo_step(orgs, users, echo=lambda _m: None)  # second run adds nothing

    by_title = {a.title: a for a in db.session.execute(sa.select(Agreement)).scalars()}
    assert len(by_title) == 4
    active = by_title[agreements_demo.TITLE_ACTIVE]
    assert active.status is AgreementStatus.active
    assert active.party_org_ids == [orgs["power_ops"].id, orgs["cdc"].id]
    result = verify_pdf(archive_path(active.current_version.pdf_path).read_bytes(), pki=platform_pki())
    assert result.is_fully_valid and result.sealed
    assert [s.signer_name for s in result.signatures[:2]] == ["李红梅", "吴晓燕"]

    signing = by_title[agreements_demo.TITLE_SIGNING]
    assert signing.status is AgreementStatus.signing
    assert [(a.id, org) for a, org, _since in awaiting_signature()] == [(signing.id, orgs["cdc"].id)]

    assert by_title[agreements_demo.TITLE_DRAFT].status is AgreementStatus.draft

    three = by_title[agreements_demo.TITLE_THREE]
    assert three.status is AgreementStatus.active and len(three.parties) == 3
    assert three.current_version.state is VersionState.signed
    assert {s.signer.username for s in three.current_version.signatures} == {"sales_sj", "school_sj", "community_sj"}
