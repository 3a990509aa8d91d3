"""A number too long to be any row's id, typed into any page's URL, is "not found" — never a server error."""
from __future__ import annotations

import re

from werkzeug.routing import IntegerConverter

HUGE = "99999999999999999999"  # beyond 64 bits: SQLite cannot bind it, PostgreSQL has no such row


def test_every_route_with_an_id_answers_404_for_an_impossible_id(app, client, make_user, login, make_org):
    login(client, make_user("admin", org=make_org()))
    checked = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not any(isinstance(c, IntegerConverter) for c in rule._converters.values()):
            continue
        path = re.sub(r"<int:\w+>", HUGE, rule.rule)
        path = re.sub(r"<(?:\w+:)?\w+>", "x", path)
        checked.append(path)
        assert client.get(path).status_code == 404, path
    assert "/agreements/" + HUGE in checked and len(checked) > 20
