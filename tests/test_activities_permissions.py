"""Route × role table for every activity screen; fails when a route is added without an entry here."""
from __future__ import annotations

import io
from datetime import date
from types import SimpleNamespace

import pytest

from coop.activities.models import ImportRun, ImportStatus
from coop.extensions import db
from coop.uploads import inspect_upload
from tests.fixtures.activities import image_bytes

ROLES = ("anonymous", "organizer", "partner", "secretary", "committee", "admin", "outsider")

# endpoint -> (url template, {role: expected status}); unspecified roles expect `default`.
GET_TABLE = {
    "activities.ledger": ("/activities/", {"anonymous": 302, "admin": 302}, 200),
    "activities.committee": ("/activities/committee", {"anonymous": 302, "committee": 200, "admin": 200}, 403),
    "activities.new": ("/activities/new", {"anonymous": 302}, 200),
    "activities.detail": ("/activities/{held}", {"anonymous": 302, "outsider": 404}, 200),
    "activities.edit": ("/activities/{held}/edit", {"anonymous": 302, "outsider": 404, "organizer": 200}, 403),
    "activities.mark_held": ("/activities/{planned}/held", {"anonymous": 302, "outsider": 404, "organizer": 200}, 403),
    "activities.attachment": ("/activities/attachments/{photo}", {"anonymous": 302, "outsider": 404}, 200),
    "activities.thumbnail": ("/activities/attachments/{photo}/thumb", {"anonymous": 302, "outsider": 404}, 200),
    "activities.by_agreement": ("/activities/agreement/{agreement}", {"anonymous": 302, "outsider": 404}, 200),
    "activities.by_org": ("/activities/org/{org_a}", {"anonymous": 302, "outsider": 404, "partner": 404}, 200),
    "activities.export": ("/activities/export.xlsx?agreement_id={agreement}", {"anonymous": 302, "outsider": 404}, 200),
    "activities.import_file": ("/activities/agreement/{agreement}/import",
                               {"anonymous": 302, "outsider": 404, "organizer": 200, "partner": 200}, 403),
    # An import's page: its importer and whoever may see the agreement's ledger.
    "activities.import_run": ("/activities/imports/{import_run}", {"anonymous": 302, "outsider": 404}, 200),
    "activities.import_run_progress": ("/activities/imports/{import_run}/progress",
                                       {"anonymous": 302, "outsider": 404}, 200),
    "activities.calendar_view": ("/activities/calendar", {"anonymous": 302}, 200),
    "activities.pending": ("/activities/pending", {"anonymous": 302}, 200),
}
# POST-only routes are exercised by test_activities_views (outsider changes nothing; partner may not edit).
POST_ONLY = {"activities.confirm", "activities.withdraw", "activities.add_attachments", "activities.delete_attachment"}


@pytest.fixture
def world(make_org, make_user, make_agreement, make_activity, frozen_today):
    frozen_today(date(2026, 6, 1))
    group = make_org("集团党委", kind="committee")
    a = make_org("甲支部", parent=group)
    b = make_org("乙支部", relation="government")
    c = make_org("丙支部")
    people = {
        "organizer": make_user("liaison", org=a),
        "partner": make_user("liaison", org=b),
        "secretary": make_user("secretary", org=a),
        "committee": make_user("committee", org=group),
        "admin": make_user("admin"),
        "outsider": make_user("liaison", org=c),
    }
    agreement = make_agreement(parties=[a, b])
    photo = inspect_upload(image_bytes("JPEG"), "p.jpg", max_bytes=10 ** 7)
    held = make_activity(people["organizer"], agreement, attachments=[photo])
    planned = make_activity(people["organizer"], agreement, status="planned", held_on=date(2026, 7, 1))
    import_run = ImportRun(agreement_id=agreement.id, created_by_id=people["organizer"].id, file_name="台账.xlsx",
                           file_path="00/00/0000.xlsx", status=ImportStatus.done)
    db.session.add(import_run)
    db.session.commit()
    ids = {"held": held.id, "planned": planned.id, "photo": held.attachments[0].id, "agreement": agreement.id,
           "org_a": a.id, "import_run": import_run.id}
    return SimpleNamespace(people=people, ids=ids)


def test_every_activity_route_is_in_the_table(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("activities.")}
    assert endpoints == set(GET_TABLE) | POST_ONLY


@pytest.mark.parametrize("role", ROLES)
def test_route_role_table(client, login, world, role):
    if role != "anonymous":
        login(client, world.people[role])
    for endpoint, (template, special, default) in GET_TABLE.items():
        resp = client.get(template.format(**world.ids))
        resp.close()
        assert resp.status_code == special.get(role, default), (endpoint, role)


def test_post_routes_need_sign_in(client, world):
    for url in (f"/activities/{world.ids['held']}/confirm", f"/activities/{world.ids['held']}/withdraw",
                f"/activities/{world.ids['held']}/attachments", f"/activities/attachments/{world.ids['photo']}/delete"):
        assert client.post(url, data={"files": [(io.BytesIO(b"x"), "x.jpg")]}).status_code == 302
