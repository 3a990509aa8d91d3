"""English interface (issue 2): every marked string is translated, no screen shows untranslated Chinese.

Chinese is the source language (message ids are Chinese); English comes from i18n/en/*.po. Three proofs:
1. extraction (the same as `pybabel extract -F babel.cfg`) finds no marked string without an English
   translation, and the fragments never translate one string two ways;
2. no template carries Chinese text outside a gettext call (except the documents that are Chinese by
   design: PDF templates and the language switch's own "简体中文");
3. every HTML screen of the access matrix, fetched by an actor allowed to see it with English chosen,
   contains no Chinese character except what users stored (every text value in the database).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.extract import extract_from_file
from markupsafe import escape

from coop.extensions import db
from coop.i18n import ROOT, fragments, merged_catalog
from tests.test_access_matrix import ACTORS, TABLE, Actor, _send, app_config, world  # noqa: F401 — fixtures

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None, "N_": None,
            "pgettext": ((1, "c"), 2), "lazy_ngettext": (1, 2)}
# Chinese by design whatever the interface language.
CHINESE_TEMPLATES = ("templates/pdf/",)
ALLOWED_LITERALS = ("简体中文",)


def _sources() -> list[tuple[str, Path]]:
    files = [("python", ROOT / "app.py")]
    for pkg in ("coop", "agreements"):
        files += [("python", p) for p in sorted((ROOT / pkg).rglob("*.py"))]
    for ext in ("html", "txt"):
        files += [("jinja2", p) for p in sorted((ROOT / "templates").rglob(f"*.{ext}"))]
    return files


def _extracted() -> dict[str, list[str]]:
    """msgid -> where it is used."""
    found: dict[str, list[str]] = {}
    for method, path in _sources():
        opts = {"extensions": "jinja2.ext.i18n,jinja2.ext.do", "silent": "false"} if method == "jinja2" else {}
        extractor = "jinja2.ext:babel_extract" if method == "jinja2" else "python"
        for lineno, message, _comments, _context in extract_from_file(extractor, str(path), keywords=KEYWORDS,
                                                                       options=opts):
            ids = message if isinstance(message, tuple) else (message,)
            for msgid in ids:
                if msgid:
                    found.setdefault(msgid, []).append(f"{path.relative_to(ROOT)}:{lineno}")
    return found


def test_every_marked_string_has_an_english_translation():
    catalog = merged_catalog("en")
    extracted = _extracted()
    assert len(extracted) > 100, "extraction found almost nothing: is babel.cfg still right?"
    missing = [f"{where[0]}: {msgid!r}" for msgid, where in sorted(extracted.items())
               if not (catalog.get(msgid) and catalog.get(msgid).string)]
    assert not missing, f"{len(missing)} strings lack an English translation in i18n/en/*.po:\n" + "\n".join(missing[:80])


def test_translations_keep_their_placeholders():
    bad = []
    for message in merged_catalog("en"):
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = sorted(set(re.findall(r"%\((\w+)\)s", ids[0])))
        for s in strings:
            if sorted(set(re.findall(r"%\((\w+)\)s", s))) != wanted:
                bad.append(f"{ids[0]!r} -> {s!r}")
            if CJK.search(s):
                bad.append(f"{ids[0]!r} -> {s!r} (Chinese left in the English text)")
    assert not bad, "\n".join(bad[:50])


def test_fragments_never_translate_one_string_two_ways():
    from babel.messages.pofile import read_po

    seen: dict[tuple, tuple[str, str]] = {}
    conflicts = []
    for path in fragments("en"):
        with path.open("rb") as fh:
            for message in read_po(fh, locale="en"):
                if not message.id or not message.string:
                    continue
                key = (message.context, message.id if isinstance(message.id, str) else message.id[0])
                if key in seen and seen[key][0] != message.string:
                    conflicts.append(f"{key!r}: {seen[key][1]} {seen[key][0]!r} vs {path.name} {message.string!r}")
                seen.setdefault(key, (message.string, path.name))
    assert not conflicts, "\n".join(conflicts)


_GETTEXT_CALL = re.compile(r"""\b(?:_|gettext|ngettext)\(\s*(['"])(?:\\.|(?!\1).)*\1""", re.S)
_COMMENT = re.compile(r"\{#.*?#\}", re.S)


def test_templates_have_no_chinese_outside_gettext():
    offenders = []
    for path in sorted((ROOT / "templates").rglob("*")):
        rel = str(path.relative_to(ROOT))
        if not path.is_file() or rel.startswith(CHINESE_TEMPLATES):
            continue
        text = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text(encoding="utf-8"))
        text = _GETTEXT_CALL.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for literal in ALLOWED_LITERALS:
            text = text.replace(literal, "")
        for lineno, line in enumerate(text.splitlines(), 1):
            if CJK.search(line):
                offenders.append(f"{rel}:{lineno}: {line.strip()[:100]}")
    assert not offenders, f"{len(offenders)} template lines show Chinese outside _():\n" + "\n".join(offenders[:80])


def _stored_strings() -> list[str]:
    """Every text value in the database (user content, names, stored notices) — allowed in any language."""
    values: set[str] = set()

    def add(value):
        if isinstance(value, str):
            if CJK.search(value):
                values.add(value)
                values.update(line for line in value.splitlines() if CJK.search(line))
        elif isinstance(value, dict):
            for v in value.values():
                add(v)
        elif isinstance(value, list):
            for v in value:
                add(v)

    for table in db.metadata.sorted_tables:
        cols = [c for c in table.columns if isinstance(c.type, (sa.String, sa.Text, sa.JSON))]
        if not cols:
            continue
        for row in db.session.execute(sa.select(*cols)).all():
            for value in row:
                if isinstance(value, str) and value[:1] in "[{":
                    try:
                        value = json.loads(value)
                    except ValueError:
                        pass
                add(value)
    return sorted(values, key=len, reverse=True)


def _document_texts() -> list[str]:
    """The Chinese text an agreement draft starts from (a template's title, purpose, commitments and clauses):
    it is the content of a Chinese official document, pre-filled into the form, not interface."""
    from agreements.presets import TEMPLATES

    texts = set()
    for t in TEMPLATES:
        texts.update([t.title, t.purpose, *t.clauses, *(text for _n, text in t.commitments.values())])
    return [t for t in texts if t]


# Who looks at a screen in the English check: the first actor of this order allowed to see it.
PREFERENCE = ("la", "sa", "ra", "lb", "admin", "lu", "su", "rx", "anon")


def test_every_screen_in_english_shows_no_untranslated_chinese(app, world, login):
    from coop.auth.models import User

    for user in world.users.values():
        db.session.get(User, user.id).locale = "en"
    db.session.commit()
    stored = sorted({*_stored_strings(), *_document_texts()}, key=len, reverse=True)
    actors = {key: Actor(app, login, key, world.users.get(key), world.tokens.get(key)) for key in ACTORS}
    with actors["anon"].client.session_transaction() as sess:
        sess["lang"] = "en"

    offenders, checked = [], 0
    for case in TABLE:
        if case.method != "GET" or case.api:
            continue
        actor = next((a for a in PREFERENCE if a in case.ok), None)
        if actor is None:
            continue
        resp = _send(actors[actor], case, world.ids)
        try:
            if resp.mimetype != "text/html" or resp.status_code != 200:
                continue
            html = resp.get_data(as_text=True)
        finally:
            resp.close()
        checked += 1
        html = re.sub(r"<script\b.*?</script>", "", html, flags=re.S)
        for value in stored:
            html = html.replace(str(escape(value)), "").replace(value, "")
        for literal in ALLOWED_LITERALS:
            html = html.replace(literal, "")
        bits = sorted({m.group(0) for m in re.finditer(r"[^<>\"]{0,12}" + CJK.pattern + r"[^<>\"]{0,12}", html)})
        if bits:
            offenders.append(f"{case.endpoint} as {actor}: {bits[:6]}")
    assert checked > 40, f"only {checked} screens were checked"
    assert not offenders, f"{len(offenders)} screens show Chinese in English mode:\n" + "\n".join(offenders)


def test_reminder_emails_speak_the_recipients_language(app, reminder_world, reminder_activity, set_prefs, sweep_at,
                                                       monkeypatch):
    """E-mails are rendered in the language the recipient chose (User.locale), whatever the sweep's own
    language; the notices' stored titles and texts stay as stored."""
    from datetime import date

    from coop.mail import DeliveryResult
    from coop.reminders import delivery
    from coop.reminders.models import Notification

    sent = []

    def keep(settings, messages):
        sent.extend(messages)
        return [DeliveryResult(f"<{len(sent)}.{i}@test>", (), True) for i, _m in enumerate(messages)]

    monkeypatch.setattr(delivery, "send_messages", keep)
    w = reminder_world
    w.ly.locale = "en"
    db.session.commit()
    for user in (w.lx, w.ly):
        set_prefs(user, mode="daily")
    reminder_activity(w.make(commitments={}), w.x, date(2026, 4, 6), status="planned", title="书记送课上门")
    sweep_at("2026-04-03T09:00")
    sweep_at("2026-04-04T08:00")
    mail = {m["To"].addresses[0].addr_spec: m for m in sent}

    zh = mail["zhangwei@example.cn"]
    assert zh["Subject"].startswith("【党建共建】每日提醒摘要：")
    assert zh.get_body(("plain",)).get_content().startswith("张伟，您好：")

    en = mail["sunhao@example.cn"]
    assert en["Subject"].startswith("[Co-building] Daily reminder digest: ")
    text, html = en.get_body(("plain",)).get_content(), en.get_body(("html",)).get_content()
    assert text.startswith("Dear 孙浩,") and "Daily reminder digest (2026-04-04): " in text
    assert '<html lang="en">' in html and "View details" in html
    stored = [w.ly.display_name] + [v for n in db.session.execute(sa.select(Notification)).scalars()
                                    for v in (n.title, n.body) if v]
    for part in (text, html):
        for value in sorted(stored, key=len, reverse=True):
            part = part.replace(str(escape(value)), "").replace(value, "")
        assert not CJK.search(part), CJK.findall(part)


def test_remembered_catalogue_follows_a_forced_locale(app):
    """Templates' _() remembers the request's catalogue (issue 10); inside ui_force_locale (an e-mail in the
    recipient's language) it switches, and switches back after."""
    from flask import render_template_string

    from coop.i18n import ui_force_locale

    with app.test_request_context("/"):
        assert render_template_string("{{ _('协议') }}") == "协议"
        with ui_force_locale("en"):
            assert render_template_string("{{ _('协议') }}") == "Agreements"
        assert render_template_string("{{ _('协议') }}") == "协议"
