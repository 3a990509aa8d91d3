"""Shared form pieces (coop/forms.py): one message for a number that could not be read."""
from __future__ import annotations

from werkzeug.datastructures import MultiDict
from wtforms import Form, IntegerField
from wtforms.validators import Optional

from coop.forms import NumberRange


class _CountForm(Form):
    count = IntegerField("人数", [Optional(), NumberRange(0, 100, "应在 0 到 100 之间")])


def test_unreadable_number_gets_its_parse_error_only(app):
    form = _CountForm(MultiDict({"count": "1.5"}))
    assert not form.validate()
    assert len(form.count.errors) == 1 and "应在" not in form.count.errors[0]


def test_out_of_range_and_huge_numbers_get_the_range_message(app):
    for typed in ("101", "-1", "9" * 400):
        form = _CountForm(MultiDict({"count": typed}))
        assert not form.validate()
        assert form.count.errors == ["应在 0 到 100 之间"]
    assert _CountForm(MultiDict({"count": "7"})).validate()
