"""The interface in Chinese (the source language) and English.

Every string a person reads on a screen is written in Chinese inside ``_()`` (templates and Python) or
``_l()`` (module-level labels, evaluated when shown); the Chinese text is the message id, so the Chinese
interface needs no catalogue at all. English translations live in PO fragments, one per area, under
``i18n/en/*.po`` (plain text that reviews well). They are merged and compiled into
``coop/translations/en/LC_MESSAGES/messages.mo`` when the app starts and a fragment is newer than the
compiled file (milliseconds; written to a temporary file and renamed, so workers starting together
never read half a file). ``tests/test_i18n.py`` fails when a marked string has no English translation.

What stays Chinese whatever the language: official documents (agreement and report PDFs — their
templates use their own Jinja environment without gettext), the 工作台账 spreadsheet layout (its
headers are the import format), and what users typed.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "i18n"
COMPILED_DIR = Path(__file__).resolve().parent / "translations"


def N_(text: str) -> str:
    """Mark a string for extraction without translating it now (it is translated where shown with _())."""
    return text


def fragments(locale: str = "en", source_dir: Path = SOURCE_DIR) -> list[Path]:
    """The PO fragments of one language, in a stable order."""
    return sorted((source_dir / locale).glob("*.po"))


def merged_catalog(locale: str = "en", source_dir: Path = SOURCE_DIR):
    """Every fragment of `locale` merged into one babel Catalog (a later fragment never overrides an
    earlier non-empty translation; conflicts are reported by tests/test_i18n.py)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    catalog = Catalog(locale=locale, domain="messages", fuzzy=False)
    for path in fragments(locale, source_dir):
        with path.open("rb") as fh:
            part = read_po(fh, locale=locale)
        for message in part:
            if not message.id or not message.string:
                continue
            existing = catalog.get(message.id, message.context)
            if existing is None or not existing.string:
                catalog.add(message.id, message.string, context=message.context, flags=message.flags)
    return catalog


def compile_translations(locales: tuple[str, ...] = ("en",), source_dir: Path = SOURCE_DIR,
                         out_dir: Path = COMPILED_DIR, force: bool = False) -> list[Path]:
    """(Re)compile each language whose fragments are newer than its .mo; return what was written."""
    from babel.messages.mofile import write_mo

    written = []
    for locale in locales:
        parts = fragments(locale, source_dir)
        if not parts:
            continue
        target = out_dir / locale / "LC_MESSAGES" / "messages.mo"
        newest = max(p.stat().st_mtime for p in parts)
        if not force and target.exists() and target.stat().st_mtime >= newest:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        catalog = merged_catalog(locale, source_dir)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".messages.", suffix=".mo")
        try:
            with os.fdopen(fd, "wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


def current_translations():
    """flask_babel.get_translations(), remembered on the request (issue 10).

    Flask-Babel looks the catalogue up through several context proxies on every call (≈8–13 µs); a page calls
    _() one to two hundred times, which was 1–3 ms of every page. Flask-Babel fixes a request's locale on first
    use, so the catalogue is fixed too — except inside force_locale, which must be ours (ui_force_locale) so the
    remembered catalogue is dropped on the way in and out.
    """
    from flask import g, has_app_context
    from flask_babel import get_translations

    if not has_app_context():
        return get_translations()
    translations = g.get("_coop_translations")
    if translations is None:
        translations = g._coop_translations = get_translations()
    return translations


@contextmanager
def ui_force_locale(locale: str):
    """flask_babel.force_locale that also switches the catalogue current_translations remembered."""
    from flask import g, has_app_context
    from flask_babel import force_locale

    def forget():
        if has_app_context():
            g.pop("_coop_translations", None)

    forget()
    try:
        with force_locale(locale):
            yield
            forget()
    finally:
        forget()


def install_template_gettext(app) -> None:
    """Templates' _(), ngettext() and pgettext() through current_translations (same results as Flask-Babel's)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: current_translations().ugettext(s),
        ngettext=lambda s, p, n: current_translations().ungettext(s, p, n),
        pgettext=lambda c, s: current_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: current_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
