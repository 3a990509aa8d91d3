"""The OpenAPI description: public, complete (every route documented, every documented route real), and true —
schemathesis fuzzes every operation through the WSGI app and finds no 5xx and no response the document
does not describe. A short budget runs by default; `--run-slow` runs the long one."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from coop.api.errors import ERROR_CODES
from coop.extensions import db

API_PREFIX = "/api/v1"
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule)


def test_document_is_public_openapi_3_1(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.is_json
    doc = resp.json
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "POST /api/v1/tokens 返回的 token"}
    for code in ERROR_CODES:
        assert f"`{code}`" in doc["info"]["description"]
    # Valid against the OpenAPI 3.1 meta-schema (the one schemathesis ships).
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    assert [e.message for e in OPENAPI_31_VALIDATOR.iter_errors(doc)] == []


def test_report_status_enums_list_every_status_a_report_can_carry(client):
    """A report row for a month before the term is "not_started"; the published schema must allow it."""
    from coop.reports.progress import STATUS_LABELS

    raw = client.get("/api/v1/openapi.json").get_data(as_text=True)
    enums = re.findall(r'"enum": \[([^\]]*"on_track"[^\]]*)\]', raw) or re.findall(r'"enum":\[([^\]]*"on_track"[^\]]*)\]', raw)
    assert enums
    for listed in enums:
        assert sorted(re.findall(r'"(\w+)"', listed)) == sorted(STATUS_LABELS)


def test_every_api_route_is_documented_and_every_documented_path_exists(app, client):
    doc = client.get("/api/v1/openapi.json").json
    routed: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIX + "/"):
            routed.setdefault(_openapi_path(rule.rule), set()).update(set(rule.methods) - IGNORED_METHODS)
    documented = {path: {m.upper() for m in item} for path, item in doc["paths"].items()}
    assert documented == routed
    # The contract's paths, by name (integrators rely on them).
    for path, method in [
        ("/api/v1/tokens", "POST"), ("/api/v1/tokens/current", "DELETE"), ("/api/v1/organizations", "GET"),
        ("/api/v1/organizations", "POST"), ("/api/v1/organizations/{org_id}", "GET"),
        ("/api/v1/organizations/{org_id}", "PATCH"), ("/api/v1/users", "GET"), ("/api/v1/users", "POST"),
        ("/api/v1/agreements", "GET"), ("/api/v1/agreements", "POST"), ("/api/v1/agreements/{agreement_id}", "GET"),
        ("/api/v1/agreements/{agreement_id}/submit", "POST"), ("/api/v1/agreements/{agreement_id}/signatures", "POST"),
        ("/api/v1/agreements/{agreement_id}/pdf", "GET"), ("/api/v1/activities", "GET"), ("/api/v1/activities", "POST"),
        ("/api/v1/activities/{activity_id}/confirmation", "POST"), ("/api/v1/reports/monthly", "GET"),
        ("/api/v1/reports/monthly.pdf", "GET"), ("/api/v1/notifications", "GET"),
        ("/api/v1/notifications/{notification_id}/read", "POST"), ("/api/v1/openapi.json", "GET"),
    ]:
        assert method in documented.get(path, set()), (method, path)


def test_operations_document_auth_errors_and_request_fields(client):
    doc = client.get("/api/v1/openapi.json").json
    public = {("/api/v1/tokens", "post"), ("/api/v1/openapi.json", "get")}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["operationId"] and op["summary"] and op["tags"]
            if (path, method) in public:
                assert op["security"] == []
            else:
                assert op["security"] == [{"bearerAuth": []}] and "401" in op["responses"], (path, method)
            if "{" in path:
                assert "404" in op["responses"]
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                assert schema["type"] == "object" and schema["additionalProperties"] is False
                assert {"400", "422"} <= set(op["responses"])
    # Field names of the contract, as documented.
    body = lambda p: doc["paths"][p]["post"]["requestBody"]["content"]["application/json"]["schema"]  # noqa: E731
    assert set(body("/api/v1/agreements")["properties"]) >= {
        "title", "party_ids", "starts_on", "ends_on", "commitments", "liaison_ids"}
    assert set(body("/api/v1/activities")["properties"]) >= {
        "agreement_id", "category", "title", "held_on", "place", "organization_ids", "party_member_count",
        "other_count", "summary", "status"}
    assert set(body("/api/v1/users")["properties"]) >= {"username", "password", "display_name", "organization_id",
                                                        "roles"}
    assert body("/api/v1/activities/{activity_id}/confirmation")["properties"]["decision"]["enum"] == [
        "confirm", "dispute"]
    org = doc["components"]["schemas"]["Organization"]["properties"]
    assert org["kind"]["enum"] == ["committee", "general_branch", "branch", "league_branch", "other"]
    assert org["relation"]["enum"] == ["group", "company", "government", "industry", "school", "other"]
    assert doc["components"]["schemas"]["Agreement"]["properties"]["status"]["enum"] == [
        "draft", "signing", "active", "expired", "terminated"]
    row = doc["components"]["schemas"]["ReportCategory"]["properties"]
    assert {"held", "confirmed", "year_to_date", "commitment", "status"} <= set(row)


# --- fuzzing ---------------------------------------------------------------------------------------------


class FreshContextApp:
    """The Flask app as WSGI, each request in its own app context (like production, and like IsolatedClient)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        db.session.commit()  # the test's own transaction must not hold SQLite's write lock
        with self.app.app_context():
            result = self.app.wsgi_app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        db.session.expire_all()
        return [body]


@pytest.fixture
def fuzz_setup(app, api_world, api_token, api_notification):
    """Some of everything to find, and an admin's token (admins reach every operation)."""
    from datetime import date

    from coop.activities import operations as activity_ops

    w = api_world
    activity = activity_ops.log_activity(w.la, agreements=[w.agreement], category="study", title="党课",
                                         held_on=date(2026, 3, 1), organization_ids=[w.b.id])
    db.session.commit()
    notification = api_notification(w.admin)
    # Random ids almost never name a row: half of the runs pin path ids to real rows, to get past the 404.
    existing = {"org_id": w.a.id, "agreement_id": w.agreement.id, "activity_id": activity.id,
                "notification_id": notification.id}
    return {"admin": w.admin, "token": api_token(w.admin), "new_token": api_token, "app": FreshContextApp(app),
            "existing": existing}


# A random month is almost always in the future (refused) and a random id names nothing: pin a month that has
# begun, and each kind of report subject, and generate the rest. (Values naming keys of `existing` are ids.)
_REPORT_PINS = ({"month": "2026-03"}, {"month": "2026-03", "agreement_id": "agreement_id"},
                {"month": "2026-03", "organization_id": "org_id"})
PINNED_QUERIES = {"GET /api/v1/reports/monthly": _REPORT_PINS, "GET /api/v1/reports/monthly.pdf": _REPORT_PINS}

# Revoking "the current token" would end the run's own token: that operation gets a throwaway one per call.
SELF_REVOKING = "DELETE /api/v1/tokens/current"


def _fuzz(fuzz_setup, *, max_examples: int, modes, skip_operations=()) -> dict[str, list[int]]:
    """Run schemathesis over every operation; returns the statuses seen per operation."""
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        ignored_auth,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_wsgi(f"{API_PREFIX}/openapi.json", fuzz_setup["app"])
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
              ignored_auth]
    statuses: dict[str, list[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in skip_operations:
            continue
        names = [p.name for p in operation.path_parameters]
        runs = [(mode, None, None) for mode in modes]
        if names:
            runs.append((GenerationMode.POSITIVE, {n: fuzz_setup["existing"][n] for n in names}, None))
        for pinned_query in PINNED_QUERIES.get(operation.label, ()):
            runs.append((GenerationMode.POSITIVE, None, {k: fuzz_setup["existing"].get(v, v)
                                                         for k, v in pinned_query.items()}))
        for mode, pinned, pinned_query in runs:
            mode_checks = checks + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

            # The token is a fixed part of every generated request (not an override after generation), so
            # negative cases never "remove" it behind schemathesis' back.
            auth = {"Authorization": f"Bearer {fuzz_setup['token']}"}

            @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=pinned, query=pinned_query,
                                              headers=auth))
            def check(case):
                extra = {}
                if operation.label == SELF_REVOKING:
                    extra = {"Authorization": f"Bearer {fuzz_setup['new_token'](fuzz_setup['admin'])}"}
                response = case.call_and_validate(headers=extra or None, checks=mode_checks)
                statuses.setdefault(operation.label, []).append(response.status_code)

            try:
                check()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, no body, and the token is fixed): positive runs cover it.
                assert mode is GenerationMode.NEGATIVE, operation.label
    return statuses


# The PDF endpoints render a document per example (seconds each): the short run leaves them to the slow one
# and to the direct tests in test_api_agreements / test_api_reports.
PDF_OPERATIONS = ("GET /api/v1/agreements/{agreement_id}/pdf", "GET /api/v1/reports/monthly.pdf")


# Operations whose generated requests must sometimes succeed, or the run proves little (the rest need data
# that random generation cannot guess: passwords, a liaison's agreement, a signing version …).
# (Schemathesis leaves out the document's own path, GET /api/v1/openapi.json; the tests above cover it.)
MUST_SUCCEED = {
    "GET /api/v1/me", "DELETE /api/v1/tokens/current", "GET /api/v1/organizations",
    "POST /api/v1/organizations", "GET /api/v1/organizations/{org_id}", "PATCH /api/v1/organizations/{org_id}",
    "GET /api/v1/users", "GET /api/v1/agreements", "GET /api/v1/agreements/{agreement_id}",
    "GET /api/v1/activities", "GET /api/v1/activities/{activity_id}", "GET /api/v1/reports/monthly",
    "GET /api/v1/notifications", "POST /api/v1/notifications/{notification_id}/read",
}


def _assert_reached(statuses: dict[str, list[int]], skipped=()) -> None:
    """The run's token kept working (no operation saw only 401s) and the run got past validation."""
    for label, seen in statuses.items():
        assert any(s != 401 for s in seen) or label == "POST /api/v1/tokens", (label, seen)
    succeeded = {label for label, seen in statuses.items() if any(200 <= s < 300 for s in seen)}
    assert MUST_SUCCEED - set(skipped) <= succeeded, sorted(MUST_SUCCEED - succeeded)


def test_fuzz_short_budget(fuzz_setup):
    from schemathesis import GenerationMode

    # The budget is the number of examples, not a time limit (a timed assertion flakes on a loaded machine).
    statuses = _fuzz(fuzz_setup, max_examples=25, modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
                     skip_operations=PDF_OPERATIONS)
    assert len(statuses) >= 20
    _assert_reached(statuses)


@pytest.mark.slow
def test_fuzz_long_budget(fuzz_setup, fast_keys):
    from schemathesis import GenerationMode

    statuses = _fuzz(fuzz_setup, max_examples=150, modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE))
    _assert_reached(statuses)
