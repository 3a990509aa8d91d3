"""Issue 9 — bad input: property-based tests (Hypothesis) over every HTML form that stores user text, the
query-string filters of the list pages and the cockpit, and the PDFs made from user text.

Each example sends hostile text — long strings (up to 5,000 characters), C0/C1 control characters, bidi
overrides, emoji and astral characters, HTML/script payloads, SQL fragments, malformed dates and huge or
non-numeric numbers — and checks the answer:

* never a 5xx;
* either a redirect after a safe save, or the form page again (200/400/401/422) with a visible error;
* when something was saved, the stored text holds no control or bidi characters, and every page rendered
  afterwards (and the re-shown form) contains the payload only escaped: no ``<script>alert(1)`` nor an
  ``on…=`` attribute in a tag, no tag pointing at ``file:`` / ``javascript:`` / an outside address;
* redirects never leave the site.

The PDF tests render an agreement and a monthly report whose text carries ``<img src=http://…>``,
``<link href=file:///etc/passwd>`` and ``url(http://…)`` payloads, record every URL WeasyPrint asks the
fetcher of coop/pdf.py for, and read the PDF back with pdftotext.

Examples per form are kept small (see EXAMPLES) so the module stays well under a minute on SQLite; the
world (organizations, people, agreements, activities) is built once per test and reused by every example.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import subprocess
import traceback
import unicodedata
from collections import Counter
from datetime import date
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import quote, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from coop.extensions import db
from coop.forms import clean_text
from coop.formatting import local_today
from tests.conftest import DEFAULT_PASSWORD

EXAMPLES = 18

pytestmark = [
    # Hypothesis warns when it prints a failing example holding 5,000-character strings; that is expected here.
    pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"),
]

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the working tree (.hypothesis/)
    # No shrinking: each step is a few HTTP requests with strings of thousands of characters, so shrinking a
    # failure could take many minutes; the failing example and the app's traceback are reported as found.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

_seq = itertools.count(1)

# --- what hostile input looks like ------------------------------------------------------------------------

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
CONTROLS = [chr(i) for i in range(0x20)] + ["\x7f"] + [chr(i) for i in range(0x80, 0xA0)]

XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    '<img src="http://203.0.113.1/x.png">',
    '<link rel=stylesheet href="file:///etc/passwd">',
    '<p style="background: url(http://203.0.113.1/bg.png)">x</p>',
]
SQL = ["' OR 1=1 --", "'; DROP TABLE users; --", '" OR ""="', "%", "_", "\\", "%_\\'", "1; SELECT pg_sleep(5)"]
ODD = [
    "😀", "𠮷野家", "👨\u200d👩\u200d👧\u200d👦", "\U0001F1E8\U0001F1F3", "\ufeff", "\u200b", "\u2028", "\ufffd",
    "\U0010fffd", "ｆｕｌｌ", "e\u0301", "{{ 7*7 }}", "{% raw %}", "%s%n", "../../etc/passwd", "共建协议", "  ",
    "\u202egnp.exe", "a\u0000b", "\x1b[31mred", "\r\n", "\t",
]
FRAGMENTS = XSS + SQL + ODD + CONTROLS + list(BIDI)

_piece = st.one_of(
    st.sampled_from(FRAGMENTS),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
)
_mixed = st.lists(_piece, min_size=1, max_size=10).map("".join)


def _repeat(args):
    unit, length = args
    return (unit * (length // len(unit) + 1))[:length]


def hostile_text(max_len: int = 5000):
    """Mixed fragments most of the time, sometimes one payload repeated up to `max_len` characters."""
    long = st.tuples(st.sampled_from(XSS + SQL + ["共", "a", "😀", "\u202e", "\x00"]),
                     st.integers(max(1, max_len // 2), max_len)).map(_repeat)
    return st.one_of(_mixed, _mixed, long)


BAD_DATES = [
    "2026-02-30", "９９９９-1-1", "", "2026-13-01", "0000-01-01", "0001-01-01", "9999-12-31", "2026/03/12",
    "2026-03-12T00:00", "2026-03-12' OR 1=1 --", "1e309", "-1", "NaN", "2026-3-5", " 2026-03-12 ", "２０２６-０３-１２",
    "20260312", "2026-03-12\x00", "<script>alert(1)</script>", "99999-01-01",
]
BAD_NUMBERS = [
    "1e309", "99999999999999999999", "-1", "NaN", "", "0", "1.5", "+5", "٣", "²", "１２", " 7 ", "0x10", "inf", "-0",
    "1_000", "9" * 400, "9" * 5000, "-99999999999999999999", "1 OR 1=1", "\x00", "<script>alert(1)</script>",
    "9223372036854775808", "2147483648",
]


def dates(good: str):
    return st.one_of(st.just(good), st.sampled_from(BAD_DATES), st.dates().map(date.isoformat), hostile_text(40))


def numbers(good: str):
    return st.one_of(st.just(good), st.sampled_from(BAD_NUMBERS), st.integers().map(str), hostile_text(40))


def text_or(good: str, max_len: int = 5000):
    return st.one_of(st.just(good), hostile_text(max_len))


def maybe(strategy, good):
    return st.one_of(st.just(good), strategy)


def combine(good: dict, bad: dict):
    """The non-text fields of a form (dates, numbers, choices): all valid, or each one fuzzed."""
    return st.one_of(st.just(good), st.fixed_dictionaries(bad))


def with_text(texts: dict, strict):
    """Hostile (or plain) text fields together with the non-text fields: when those are valid, the text is
    what decides whether the form saves, so saves with hostile text are common."""
    return st.tuples(st.fixed_dictionaries(texts), strict).map(lambda pair: {**pair[0], **pair[1]})


# The explicit examples every form runs first: payloads in every text field, everything else valid.
P_SHORT = "<script>alert(1)</script>\u202e\x07"  # fits the 40-character fields
P_LONG = '<script>alert(1)</script>"><img src=x onerror=alert(1)>\u202e\x07\x00\u061c\x85 \' OR 1=1 -- 😀𠮷'
P_MULTI = P_LONG + "\r\n第二行\t" + '<link rel=stylesheet href="file:///etc/passwd">\u2066'


# --- checking answers --------------------------------------------------------------------------------------

_BAD_URL = re.compile(r"^\s*(javascript|vbscript|file|data:text/html)|^\s*(https?:)?//203\.0\.113\.", re.I)


class _TagScan(HTMLParser):
    """Collects what would run or load in a browser: on…= attributes, script bodies, outside URLs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._script = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…> event-handler attribute")
            if name in ("src", "href", "action", "formaction", "srcset", "poster") and value and _BAD_URL.search(value):
                self.problems.append(f"<{tag} {name}={value[:60]!r}>")
            if name == "style" and value and "url(" in value and "203.0.113" in value:
                self.problems.append(f"<{tag} style={value[:60]!r}>")
        if tag == "img" and dict(attrs).get("src") == "x":
            self.problems.append("<img src=x> injected")
        if tag == "script":
            self._script = True
            if not dict(attrs).get("src"):
                self.problems.append("inline <script>")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = False

    def handle_data(self, data):
        if self._script and "alert(" in data:
            self.problems.append("script body with alert(")


def assert_escaped(html: str, where: str = "") -> None:
    assert "<script>alert(1)" not in html, f"raw <script> payload in {where}"
    assert "<img src=x onerror" not in html, f"raw <img onerror> payload in {where}"
    scan = _TagScan()
    scan.feed(html)
    scan.close()
    assert not scan.problems, f"unescaped markup in {where}: {scan.problems[:5]}"


def bad_chars(value: str | None, *, multiline: bool = False) -> list[str]:
    """Control and bidi characters in a stored value (newline and tab allowed in multi-line text)."""
    if not value:
        return []
    return [
        f"U+{ord(ch):04X}" for ch in value
        if ch in BIDI or (unicodedata.category(ch) == "Cc" and not (multiline and ch in "\n\t"))
    ]


def assert_clean(value, *, multiline: bool = False, field: str = "") -> None:
    found = bad_chars(value, multiline=multiline)
    assert not found, f"stored {field or 'value'} keeps control/bidi characters {found[:5]}"


class Crashes(logging.Handler):
    """Keeps the tracebacks the app logs for unhandled errors, to show them when a 5xx is seen."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record):
        if record.exc_info:
            self.records.append("".join(traceback.format_exception(*record.exc_info))[-3000:])


def is_error_page(html: str) -> bool:
    return 'class="error"' in html or "flash-error" in html or 'role="alert"' in html


def assert_local_redirect(resp) -> str:
    location = resp.headers.get("Location", "")
    # Browsers drop tabs/newlines in URLs and read "\" as "/" in http(s) URLs.
    seen_as = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
    parts = urlsplit(seen_as)
    assert not seen_as.startswith("//") and parts.netloc in ("", "localhost", "coop.test"), \
        f"redirect leaves the site: {location!r}"
    return location


def _short(value, limit: int = 80):
    """A readable picture of what was sent: long strings cut, with their length."""
    if isinstance(value, dict):
        return {k: _short(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_short(v, limit) for v in value]
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}…({len(value)} chars)"
    return value


class Checker:
    """Per-test helper bound to the app: request wrappers that check status, escaping and redirects."""

    def __init__(self, app, crashes):
        self.app = app
        self.crashes = crashes
        self.outcomes: Counter = Counter()  # (form, "saved" | "refused"): shown with BAD_INPUT_STATS=1 and -s

    def no_5xx(self, resp, what, sent=None):
        if resp.status_code >= 500:
            detail = self.crashes.records[-1] if self.crashes.records else "(no traceback logged)"
            shown = "" if sent is None else f"\nsent (shortened): {_short(sent)}"
            pytest.fail(f"{what} answered {resp.status_code}{shown}\n{detail}")

    def saved_at_least_once(self, *forms):
        """The explicit examples (payloads in every text field, the rest valid) must have been saved."""
        for form in forms:
            assert self.outcomes[(form, "saved")] >= 1, f"{form}: no example was saved ({dict(self.outcomes)})"

    def page(self, client, url, *, what=None, allowed=(200, 302, 400, 403, 404, 422), **kw):
        """GET a page: no 5xx, an allowed status, escaped HTML, local redirects."""
        resp = client.get(url, **kw)
        what = what or f"GET {url}"
        self.no_5xx(resp, what, kw.get("query_string"))
        assert resp.status_code in allowed, f"{what} answered {resp.status_code}"
        if resp.status_code in (301, 302, 303):
            assert_local_redirect(resp)
        elif resp.mimetype == "text/html":
            assert_escaped(resp.get_data(as_text=True), what)
        return resp

    def submit(self, client, url, data, *, what=None, error_statuses=(200, 400, 401, 422), follow=True,
               redirect_is_error_ok=False):
        """POST a form. Returns ("saved", followed page) or ("refused", response).

        A redirect counts as saved; the page it leads to is fetched and checked too. Any other answer must be
        the form again with a visible error message.
        """
        what = what or f"POST {url}"
        resp = client.post(url, data=data)
        self.no_5xx(resp, what, data)
        if resp.status_code in (302, 303):
            location = assert_local_redirect(resp)
            followed = self.page(client, location, what=f"{what} → {location}", allowed=(200, 302)) if follow else None
            self.outcomes[(what, "saved")] += 1
            return "saved", followed
        assert resp.status_code in error_statuses, f"{what} answered {resp.status_code}"
        html = resp.get_data(as_text=True)
        assert_escaped(html, what)
        assert is_error_page(html), f"{what} re-showed the form ({resp.status_code}) without an error message"
        self.outcomes[(what, "refused")] += 1
        return "refused", resp


@pytest.fixture
def check(app):
    crashes = Crashes()
    app.logger.addHandler(crashes)
    checker = Checker(app, crashes)
    try:
        yield checker
    finally:
        app.logger.removeHandler(crashes)
        if os.environ.get("BAD_INPUT_STATS"):
            print("\n" + "\n".join(f"  {n:3d} {outcome:8s} {what}" for (what, outcome), n in sorted(checker.outcomes.items())))


def test_the_checks_catch_what_they_should():
    """The escaping and redirect checks above fail on raw payloads and pass on escaped ones."""
    from markupsafe import escape

    for payload in XSS[:8]:
        html = f'<p>{payload}</p><input value="{payload}">'
        with pytest.raises(AssertionError):
            assert_escaped(html, "raw")
        assert_escaped(f'<p>{escape(payload)}</p><input value="{escape(payload)}">', "escaped")
    assert bad_chars("a\u202eb\x00c\u061c") == ["U+202E", "U+0000", "U+061C"]
    assert bad_chars("a\nb\tc", multiline=True) == [] and bad_chars("a\nb", multiline=False) == ["U+000A"]
    for location in ("//evil.example/", "/\\evil.example", "http://evil.example/", "/\t/evil.example"):
        with pytest.raises(AssertionError):
            assert_local_redirect(SimpleNamespace(headers={"Location": location}))
    assert_local_redirect(SimpleNamespace(headers={"Location": "/orgs/?q=%5C"}))


# --- the world every test works in ------------------------------------------------------------------------


@pytest.fixture
def world(app, make_org, make_user, make_agreement, login):
    """A committee G over branches A and B; an admin, G's reviewer, a secretary and a liaison in A and B; an
    active A×B agreement naming both liaisons; one signed-in client per person."""
    G = make_org("集团党委", kind="committee", relation="group")
    A = make_org("甲支部", parent=G)
    B = make_org("乙支部", parent=G, relation="government")
    people = dict(
        admin=make_user("admin", display_name="管理员"),
        reviewer=make_user("committee", org=G, display_name="王审阅"),
        secA=make_user("secretary", org=A, display_name="甲书记"),
        lyA=make_user("liaison", org=A, display_name="甲联络员"),
        secB=make_user("secretary", org=B, display_name="乙书记"),
        lyB=make_user("liaison", org=B, display_name="乙联络员"),
    )
    agreement = make_agreement(parties=[A, B], status="active", starts_on=date(2026, 1, 1),
                               ends_on=date(2027, 12, 31), liaisons={A: [people["lyA"]], B: [people["lyB"]]},
                               commitments={"study": 4, "event": 2}, title="甲乙结对共建协议")
    clients = {}
    for name, user in people.items():
        clients[name] = app.test_client()
        login(clients[name], user)
    return SimpleNamespace(G=G, A=A, B=B, agreement=agreement, clients=clients, **people)


def new_activity(world, make_activity, **fields):
    """A held activity logged by A's liaison under the A×B agreement (through the operation)."""
    values = dict(title=f"联学活动{next(_seq)}", held_on=date(2026, 3, 12))
    values.update(fields)
    return make_activity(world.lyA, world.agreement, **values)


# --- sign-in, profile, password --------------------------------------------------------------------------------


NEXT_TARGETS = [
    "/orgs/", "//evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "/\r\n/x",
    "/%0d%0aSet-Cookie:x=1", "http://evil.example/", "javascript:alert(1)", "/\x00", "/共建?a=<script>", " /orgs/",
    "/\\/evil.example", "/ /evil.example", "\\\\evil.example", "/\u3000/evil.example", "/\x0b/evil.example",
]


def test_sign_in_form(app, check, make_user):
    fuzzed = make_user(username=f"signin{next(_seq)}")
    # A second account for the `next` parameter: the first one gets locked by the failures of the first part.
    redirected = make_user(username=f"signnext{next(_seq)}")

    @FUZZ
    @example(username=P_SHORT, password=P_LONG)
    @given(username=text_or(fuzzed.username, 300), password=text_or(DEFAULT_PASSWORD, 300))
    def credentials(username, password):
        outcome, _ = check.submit(app.test_client(), "/login", {"username": username, "password": password},
                                  what="sign-in")
        if outcome == "saved":
            assert clean_text(username).lower() == fuzzed.username.lower() and password == DEFAULT_PASSWORD
        # Failures are counted; a lock is itself a clear refusal (401 with a message), so keep going.

    @FUZZ
    @example(next_="/\t/evil.example")
    @example(next_="/\n/evil.example")
    @example(next_="/\\evil.example")
    @given(next_=st.one_of(st.sampled_from(NEXT_TARGETS), hostile_text(300)))
    def next_parameter(next_):
        client = app.test_client()
        resp = client.post("/login?" + urlencode({"next": next_}),
                           data={"username": redirected.username, "password": DEFAULT_PASSWORD})
        check.no_5xx(resp, f"sign-in with next={next_!r}")
        assert resp.status_code == 302, f"sign-in with next={next_!r} answered {resp.status_code}"
        assert_local_redirect(resp)

    credentials()
    next_parameter()


def test_profile_and_password_forms(app, check, world):
    from coop.auth.models import User

    client = world.clients["lyA"]
    state = {"password": DEFAULT_PASSWORD}
    strict = combine(
        {"p-email": "lly@example.cn", "p-locale": "zh"},
        {"p-email": st.one_of(st.sampled_from(["a@example.cn", "", "<script>alert(1)</script>@x.cn", "a@b",
                                               "\u202e@example.cn", "x" * 130 + "@example.cn", "a@b.cn\r\nBcc: c@d.cn"]),
                              hostile_text(200)),
         "p-locale": st.sampled_from(["zh", "en", "", "<script>alert(1)</script>", "zh\x00"])},
    )

    @FUZZ
    @example(values={"p-display_name": P_LONG, "p-phone": P_SHORT, "p-email": "lly@example.cn", "p-locale": "zh"})
    @given(values=with_text({"p-display_name": text_or("甲联络员", 75), "p-phone": text_or("13800000000", 50)},
                            strict))
    def profile(values):
        outcome, _ = check.submit(client, "/profile", {"which": "profile", **values}, what="profile")
        user = db.session.get(User, world.lyA.id)
        for field in ("display_name", "email", "phone"):
            assert_clean(getattr(user, field), field=field)
        if outcome == "saved":
            assert user.display_name == clean_text(values["p-display_name"])
            check.page(client, "/", what="home page after profile change")

    @FUZZ
    @example(old=None, new="Aa1!\x00\u202eXYZzz<script>alert(1)</script>", same=True)
    @given(old=st.one_of(st.just(None), hostile_text(300)), new=st.one_of(
        st.sampled_from(["Neu-Passw0rd!", "short", "", "密码密码密码密码Aa1!", "Aa1!\x00\u202eXYZzz", "Aa1!😀😀😀😀"]),
        hostile_text(300)), same=st.booleans())
    def password(old, new, same):
        current = state["password"]
        outcome, _ = check.submit(client, "/profile", {
            "which": "password", "pw-old_password": current if old is None else old, "pw-new_password": new,
            "pw-confirm": new if same else new + "x"}, what="change password")
        if outcome == "saved":
            state["password"] = new
        # The session survives its own password change: the profile page still opens.
        check.page(client, "/profile", what="profile after password change", allowed=(200,))

    profile()
    password()
    check.saved_at_least_once("profile")


# --- organizations and users (admin) --------------------------------------------------------------------------


def test_organization_forms(app, check, world):
    from coop.orgs.models import Organization

    client = world.clients["admin"]
    edited = world.B
    texts = {
        "name": text_or("新建党支部", 150), "short_name": text_or("", 50), "region": text_or("河北石家庄", 100),
        "contact_name": text_or("张三", 50), "contact_phone": text_or("0311-1", 50),
        "brand_name": text_or("红色引擎", 75), "brand_slogan": text_or("党建引领", 250),
    }
    strict = combine(
        {"kind": "branch", "relation": "company", "contact_email": "lx@example.cn", "parent_id": "G"},
        {"kind": st.sampled_from(["branch", "committee", "", "bogus", "<script>alert(1)</script>", "branch\x00"]),
         "relation": st.sampled_from(["company", "school", "", "' OR 1=1 --"]),
         "contact_email": maybe(hostile_text(200), "lx@example.cn"),
         "parent_id": st.sampled_from(["G", "", "bad", "99999999999999999999", "²", "-1"])},
    )
    explicit = {"name": P_LONG, "short_name": P_SHORT, "region": P_LONG, "contact_name": P_SHORT,
                "contact_phone": P_SHORT, "brand_name": P_LONG[:60], "brand_slogan": P_LONG,
                "kind": "branch", "relation": "company", "contact_email": "lx@example.cn", "parent_id": "G"}

    def form(values):
        parent = values["parent_id"]
        return {**values, "parent_id": str(world.G.id) if parent == "G" else parent}

    def check_stored(org_id, sent):
        org = db.session.get(Organization, org_id)
        for field in ("name", "short_name", "region", "contact_name", "contact_phone", "contact_email",
                      "brand_name", "brand_slogan"):
            assert_clean(getattr(org, field), field=field)
        assert org.name == clean_text(sent["name"])
        check.page(client, f"/orgs/{org_id}", what="organization page", allowed=(200,))
        check.page(client, "/orgs/", what="organization tree", allowed=(200,))

    @FUZZ
    @example(values=explicit)
    @given(values=with_text(texts, strict))
    def create(values):
        if values["name"] == "新建党支部":
            values = {**values, "name": f"新建党支部{next(_seq)}"}
        outcome, page = check.submit(client, "/orgs/new", form(values), what="new organization")
        if outcome == "saved":
            check_stored(int(re.search(r"/orgs/(\d+)", page.request.path)[1]), values)

    @FUZZ
    @example(values={**explicit, "name": P_LONG + "改"})
    @given(values=with_text(texts, strict))
    def edit(values):
        outcome, _ = check.submit(client, f"/orgs/{edited.id}/edit", form(values), what="edit organization")
        if outcome == "saved":
            check_stored(edited.id, values)

    create()
    edit()
    check.saved_at_least_once("new organization", "edit organization")


def test_user_admin_forms(app, check, world):
    from coop.auth.models import User

    client = world.clients["admin"]
    target = world.lyB
    texts = {"display_name": text_or("新用户", 75), "title": text_or("组织委员", 75),
             "phone": text_or("13900000000", 50)}
    strict = combine(
        {"email": "new@example.cn", "roles": ["liaison"], "organization_id": "A", "is_active": "y"},
        {"email": maybe(hostile_text(200), "new@example.cn"),
         "roles": st.lists(st.sampled_from(["liaison", "secretary", "committee", "admin", "bogus", "", "<b>"]),
                           max_size=3),
         "organization_id": st.sampled_from(["A", "", "99999999999999999999", "²", "abc", "-1"]),
         "is_active": st.sampled_from(["y", "", "n", "\x00"])},
    )
    explicit = {"display_name": P_SHORT, "title": P_SHORT, "phone": P_SHORT, "email": "new@example.cn",
                "roles": ["liaison"], "organization_id": "A", "is_active": "y"}

    def form(values):
        org = values["organization_id"]
        return {**values, "organization_id": str(world.A.id) if org == "A" else org}

    def check_stored(user_id, sent):
        user = db.session.get(User, user_id)
        for field in ("username", "display_name", "title", "email", "phone"):
            assert_clean(getattr(user, field), field=field)
        assert user.display_name == clean_text(sent["display_name"])
        check.page(client, f"/admin/users/{user_id}", what="user form", allowed=(200,))
        check.page(client, "/admin/users", what="user list", allowed=(200,))

    @FUZZ
    @example(values=explicit, username="<b>" + P_SHORT, password="Init-Passw0rd!\u202e")
    @given(values=with_text(texts, strict), username=text_or("", 80),
           password=maybe(hostile_text(300), "Init-Passw0rd!"))
    def create(values, username, password):
        username = username or f"newuser{next(_seq)}"
        outcome, _ = check.submit(client, "/admin/users/new", {**form(values), "username": username,
                                                               "password": password}, what="new user")
        if outcome == "saved":
            user = db.session.execute(sa.select(User).where(User.username == clean_text(username))).scalar_one()
            check_stored(user.id, values)

    @FUZZ
    @example(values=explicit)
    @given(values=with_text(texts, strict))
    def edit(values):
        outcome, _ = check.submit(client, f"/admin/users/{target.id}", form(values), what="edit user")
        if outcome == "saved":
            check_stored(target.id, values)

    create()
    edit()
    check.saved_at_least_once("new user", "edit user")


# --- agreements --------------------------------------------------------------------------------------------


def _agreement_fields(world):
    from coop.categories import CATEGORIES

    A, B = str(world.A.id), str(world.B.id)
    texts = {"title": text_or("党支部结对共建协议", 250), "number": text_or("", 75),
             "purpose": text_or("以党建共建促进业务融合。", 5000),
             "clauses": text_or("各方建立联席会议制度。\n每季度联学一次。", 5000)}
    good = {"parties-0": A, "parties-1": B, "parties-2": "", "starts_on": "2026-01-01", "ends_on": "2027-12-31",
            "signing_order_fixed": "", "liaisons": [f"{A}:{world.lyA.id}", f"{B}:{world.lyB.id}"],
            "liaison_orgs": [A, B]}
    junk_ids = st.sampled_from(["", A, B, "²", "99999999999999999999", "-1", "abc", "1e309",
                                "<script>alert(1)</script>"])
    bad = {
        "parties-0": maybe(junk_ids, A), "parties-1": maybe(junk_ids, B), "parties-2": maybe(junk_ids, ""),
        "starts_on": dates("2026-01-01"), "ends_on": dates("2027-12-31"),
        "signing_order_fixed": st.sampled_from(["", "y", "\x00"]),
        "liaisons": st.lists(st.sampled_from([f"{A}:{world.lyA.id}", f"{B}:{world.lyB.id}", "²:1", "1:²",
                                              f"{A}:99999999999999999999", "x", ":", f"{A}:{world.lyB.id}"]),
                             max_size=3),
        "liaison_orgs": st.lists(st.sampled_from([A, B, "²", "99999999999999999999", ""]), max_size=3),
    }
    for c in CATEGORIES:
        texts[f"text_{c.code}"] = text_or("书记送课上门" if c.code == "study" else "", 600)
        good[f"count_{c.code}"] = "4" if c.code == "study" else ""
        bad[f"count_{c.code}"] = numbers(good[f"count_{c.code}"])
    explicit = {**good, "title": P_LONG, "number": P_SHORT, "purpose": P_MULTI, "clauses": P_MULTI,
                **{f"text_{c.code}": P_LONG for c in CATEGORIES}}
    return with_text(texts, combine(good, bad)), explicit


def _check_agreement_stored(check, client, agreement_id, sent):
    from agreements.models import Agreement

    agreement = db.session.get(Agreement, agreement_id)
    assert_clean(agreement.title, field="title")
    assert agreement.title == clean_text(sent["title"])
    assert_clean(agreement.number, field="number")
    assert_clean(agreement.purpose, multiline=True, field="purpose")
    for clause in agreement.clauses or []:
        assert_clean(clause, multiline=True, field="clause")  # one line of the clauses text area
    for c in agreement.commitments:
        assert_clean(c.text, field=f"commitment {c.category}")
    check.page(client, f"/agreements/{agreement_id}", what="agreement page", allowed=(200,))
    check.page(client, "/agreements/", what="agreement list", allowed=(200,))


def test_agreement_draft_and_edit_forms(app, check, world):
    from agreements import operations as ops
    from tests.fixtures.agreements import draft_content

    client = world.clients["secA"]
    draft = ops.create_draft(draft_content(world.A, world.B), actor=world.secA)
    db.session.commit()
    fields, explicit = _agreement_fields(world)

    @FUZZ
    @example(values=explicit)
    @given(values=fields)
    def create(values):
        outcome, page = check.submit(client, "/agreements/new", values, what="new agreement")
        if outcome == "saved":
            agreement_id = int(re.search(r"/agreements/(\d+)", page.request.path)[1])
            _check_agreement_stored(check, client, agreement_id, values)

    @FUZZ
    @example(values=explicit)
    @given(values=fields)
    def edit(values):
        outcome, _ = check.submit(client, f"/agreements/{draft.id}/edit", values, what="edit draft")
        if outcome == "saved":
            _check_agreement_stored(check, client, draft.id, values)

    create()
    edit()
    check.saved_at_least_once("new agreement", "edit draft")


def test_decline_and_terminate_reasons(app, check, world, make_agreement, monkeypatch):
    """Decline (B's secretary, an agreement being signed) and terminate (A's secretary) with hostile reasons."""
    from agreements import operations as ops
    from agreements.models import Agreement, AgreementStatus, AgreementVersion
    from tests.fixtures.agreements import draft_content

    # Submitting renders the PDF to be signed; the text of a reason never reaches it, so a stub will do here.
    monkeypatch.setattr(ops, "render_snapshot_pdf",
                        lambda data, **kw: (b"%PDF-1.7 stub", [[0, 10.0, 10.0, 100.0, 60.0]] * len(data["parties"])))
    signing = ops.create_draft(draft_content(world.A, world.B), actor=world.secA)
    db.session.commit()

    reasons = st.one_of(hostile_text(2000), st.just(""), st.just("   "))

    @FUZZ
    @example(reason=P_MULTI)
    @given(reason=reasons)
    def decline(reason):
        agreement = db.session.get(Agreement, signing.id)
        if agreement.status is AgreementStatus.draft:
            ops.submit_for_signing(agreement, actor=world.secA)
            db.session.commit()
        check.submit(world.clients["secB"], f"/agreements/{signing.id}/decline", {"decline-reason": reason},
                     what="decline")
        version = db.session.execute(sa.select(AgreementVersion).where(AgreementVersion.agreement_id == signing.id)
                                     .order_by(AgreementVersion.id.desc())).scalars().first()
        assert_clean(version.close_reason, multiline=True, field="decline reason")
        if version.close_reason:
            assert version.close_reason == clean_text(reason, multiline=True)
        check.page(world.clients["secA"], f"/agreements/{signing.id}", what="declined agreement", allowed=(200,))
        check.page(world.clients["admin"], "/audit/", what="audit log", allowed=(200,))

    state = {"agreement": None}

    @FUZZ
    @example(reason=P_MULTI)
    @given(reason=reasons)
    def terminate(reason):
        if state["agreement"] is None or state["agreement"].status is not AgreementStatus.active:
            state["agreement"] = make_agreement(parties=[world.A, world.B], status="active")
        agreement = state["agreement"]
        outcome, _ = check.submit(world.clients["secA"], f"/agreements/{agreement.id}/terminate",
                                  {"reason": reason}, what="terminate")
        agreement = db.session.get(Agreement, agreement.id)
        assert_clean(agreement.end_reason, multiline=True, field="end reason")
        if outcome == "saved":
            assert agreement.status is AgreementStatus.terminated
            assert agreement.end_reason == clean_text(reason, multiline=True)

    decline()
    terminate()
    check.saved_at_least_once("terminate")


# --- activities ------------------------------------------------------------------------------------------


def _activity_fields(world, *, new: bool):
    A, B = str(world.A.id), str(world.B.id)
    texts = {"title": text_or("联合主题党日", 250), "place": text_or("运维检修中心三楼会议室", 250),
             "summary": text_or("李红梅书记讲授专题党课。", 5000), "outcome": text_or("双方约定每季度联学一次。", 5000)}
    good = {"category": "study", "tags": [], "held_on": "2026-03-12", "start_time": "09:00", "end_time": "11:00",
            "organization_ids": [A, B], "party_member_count": "18", "other_count": "4"}
    ids = st.lists(st.sampled_from([A, B, "²", "99999999999999999999", "-1", "x", "1e309", ""]), min_size=1, max_size=3)
    bad = {
        "category": st.sampled_from(["study", "event", "", "bogus", "<script>alert(1)</script>"]),
        "tags": st.lists(st.sampled_from(["event", "talent", "bogus", ""]), max_size=2),
        "held_on": dates("2026-03-12"),
        "start_time": st.one_of(st.just(""), st.just("09:00"), st.sampled_from(
            ["25:00", "9", "09:00:00", "１０:００", "-1:00", "99999999999999999999:00"]), hostile_text(20)),
        "end_time": st.one_of(st.just(""), st.just("11:00"), st.sampled_from(["08:00", "24:00", "NaN"]),
                              hostile_text(20)),
        "organization_ids": maybe(ids, [A, B]),
        "party_member_count": numbers("18"),
        "other_count": numbers("4"),
    }
    if new:
        good.update(agreement_ids=[str(world.agreement.id)], status="held")
        bad["agreement_ids"] = maybe(st.lists(st.sampled_from(
            [str(world.agreement.id), "²", "99999999999999999999", "0", "x"]), min_size=1, max_size=2),
            [str(world.agreement.id)])
        bad["status"] = st.sampled_from(["held", "planned", "", "withdrawn", "bogus"])
    else:
        texts["note"] = text_or("", 250)
    explicit = {**good, "title": P_LONG, "place": P_LONG, "summary": P_MULTI, "outcome": P_MULTI}
    if not new:
        explicit["note"] = P_SHORT
    return with_text(texts, combine(good, bad)), explicit


def _check_activity_stored(check, client, activity_id, sent=None):
    from coop.activities.models import Activity

    activity = db.session.get(Activity, activity_id)
    assert_clean(activity.title, field="title")
    assert_clean(activity.place, field="place")
    assert_clean(activity.summary, multiline=True, field="summary")
    assert_clean(activity.outcome, multiline=True, field="outcome")
    if sent is not None:
        assert activity.title == clean_text(sent["title"])
    for revision in activity.revisions:
        assert_clean(revision.note, field="revision note")
    check.page(client, f"/activities/{activity_id}", what="activity page", allowed=(200,))


def test_activity_log_and_edit_forms(app, check, world, make_activity):
    client = world.clients["lyA"]
    edited = new_activity(world, make_activity)
    new_fields, new_explicit = _activity_fields(world, new=True)
    edit_fields, edit_explicit = _activity_fields(world, new=False)

    @FUZZ
    @example(values=new_explicit)
    @given(values=new_fields)
    def log(values):
        outcome, page = check.submit(client, "/activities/new", values, what="log activity")
        if outcome == "saved":
            activity_id = int(re.search(r"/activities/(\d+)", page.request.path)[1])
            _check_activity_stored(check, client, activity_id, values)
            check.page(client, "/activities/", what="ledger", allowed=(200,))

    @FUZZ
    @example(values=edit_explicit)
    @given(values=edit_fields)
    def edit(values):
        outcome, _ = check.submit(client, f"/activities/{edited.id}/edit", values, what="edit activity")
        if outcome == "saved":
            _check_activity_stored(check, client, edited.id, values)

    log()
    edit()
    check.saved_at_least_once("log activity", "edit activity")


def test_mark_held_form(app, check, world, make_activity):
    from coop.activities.models import ActivityStatus

    client = world.clients["lyA"]
    state = {"activity": None}
    fields, explicit = _activity_fields(world, new=False)
    skip = ("category", "tags", "title", "note")

    @settings(parent=FUZZ, max_examples=10)
    @example(values=explicit)
    @given(values=fields)
    def held(values):
        if state["activity"] is None or state["activity"].status is not ActivityStatus.planned:
            state["activity"] = new_activity(world, make_activity, status="planned", held_on=date(2027, 3, 1))
        activity = state["activity"]
        check.submit(client, f"/activities/{activity.id}/held", {k: v for k, v in values.items() if k not in skip},
                     what="mark held")
        _check_activity_stored(check, client, activity.id)

    held()
    check.saved_at_least_once("mark held")


def test_confirm_dispute_and_withdraw(app, check, world, make_activity):
    from coop.activities.models import Activity, ActivityConfirmation, ActivityStatus

    answered = new_activity(world, make_activity)

    @FUZZ
    @example(decision="dispute", comment=P_MULTI, org="")
    @given(decision=st.sampled_from(["confirm", "dispute", "", "bogus", "<script>alert(1)</script>"]),
           comment=st.one_of(st.just(""), hostile_text(2000)),
           org=st.sampled_from(["", "B", "A", "²", "99999999999999999999", "-1", "NaN"]))
    def confirm(decision, comment, org):
        org_value = str(getattr(world, org).id) if org in ("A", "B") else org
        check.submit(world.clients["lyB"], f"/activities/{answered.id}/confirm",
                     {"decision": decision, "comment": comment, "organization_id": org_value}, what="confirm/dispute")
        conf = db.session.execute(sa.select(ActivityConfirmation).where(
            ActivityConfirmation.activity_id == answered.id)).scalar_one()
        assert_clean(conf.comment, multiline=True, field="confirmation comment")
        for who in ("lyA", "lyB"):
            check.page(world.clients[who], f"/activities/{answered.id}", what="activity page", allowed=(200,))
        check.page(world.clients["lyA"], "/activities/pending", what="pending page", allowed=(200,))

    state = {"activity": None}

    @FUZZ
    @example(reason=P_MULTI)
    @given(reason=st.one_of(st.just(""), hostile_text(2000)))
    def withdraw(reason):
        if state["activity"] is None or state["activity"].status is ActivityStatus.withdrawn:
            state["activity"] = new_activity(world, make_activity)
        activity = state["activity"]
        check.submit(world.clients["lyA"], f"/activities/{activity.id}/withdraw", {"reason": reason}, what="withdraw")
        stored = db.session.get(Activity, activity.id)
        assert_clean(stored.withdrawn_reason, multiline=True, field="withdrawn reason")
        if stored.status is ActivityStatus.withdrawn:
            assert stored.withdrawn_reason == clean_text(reason, multiline=True)
            check.page(world.clients["lyB"], f"/activities/{activity.id}", what="withdrawn activity", allowed=(200,))

    confirm()
    withdraw()
    conf = db.session.execute(sa.select(ActivityConfirmation).where(
        ActivityConfirmation.activity_id == answered.id)).scalar_one()
    assert conf.comment is not None or conf.state.value == "confirmed"


# --- committee review -----------------------------------------------------------------------------------


def test_review_forms(app, check, world, make_activity):
    from coop.review.models import ActivityEvaluation, PartnerEvaluation, PointAdjustment
    from coop.review.scoring import RULE_CODES

    reviewer = world.clients["reviewer"]
    activity = new_activity(world, make_activity)

    @FUZZ
    @example(rating="good", comment=P_MULTI, typical="y")
    @given(rating=st.sampled_from(["excellent", "good", "fair", "", "bogus", "<script>alert(1)</script>"]),
           comment=st.one_of(st.just(""), hostile_text(3000)), typical=st.sampled_from(["", "y"]))
    def evaluate(rating, comment, typical):
        outcome, _ = check.submit(reviewer, f"/review/activities/{activity.id}/evaluate",
                                  {"rating": rating, "comment": comment, "typical_case": typical}, what="evaluate")
        ev = db.session.execute(sa.select(ActivityEvaluation).where(
            ActivityEvaluation.activity_id == activity.id)).scalar_one_or_none()
        if ev is not None:
            assert_clean(ev.comment, multiline=True, field="evaluation comment")
        if outcome == "saved":
            assert ev.comment == (clean_text(comment, multiline=True) or ev.comment)
            check.page(reviewer, "/review/typical", what="typical cases", allowed=(200,))

    @FUZZ
    @example(values={"reason": P_MULTI, "points": "5", "applies_on": "2026-03-12"})
    @given(values=with_text({"reason": st.one_of(st.just("表现突出"), hostile_text(3000), st.just(""))},
                            combine({"points": "5", "applies_on": "2026-03-12"},
                                    {"points": numbers("5"), "applies_on": dates("2026-03-12")})))
    def adjust(values):
        check.submit(reviewer, f"/review/scores/{world.A.id}", values, what="adjust points")
        for adj in db.session.execute(sa.select(PointAdjustment)).scalars():
            assert_clean(adj.reason, multiline=True, field="adjustment reason")
        check.page(reviewer, f"/review/scores/{world.A.id}", what="organization score", allowed=(200,))

    @settings(parent=FUZZ, max_examples=10)
    @given(values=st.fixed_dictionaries({f"points_{c}": numbers("3") for c in RULE_CODES}),
           active=st.lists(st.sampled_from(list(RULE_CODES)), max_size=3))
    def rules(values, active):
        data = {**values, **{f"active_{c}": "y" for c in active}}
        check.submit(world.clients["admin"], "/review/rules", data, what="point rules")
        check.page(world.clients["admin"], "/review/rules", what="rules page", allowed=(200,))

    @settings(parent=FUZZ, max_examples=10)
    @given(days=numbers("30"), published=st.sampled_from(["", "y", "\x00"]))
    def review_settings(days, published):
        check.submit(reviewer, "/review/settings", {"stalled_days": days, "ranking_published": published},
                     what="review settings")

    today = local_today()
    slot = f"q{today.year}{(today.month - 1) // 3 + 1}f{world.A.id}t{world.B.id}"

    @settings(parent=FUZZ, max_examples=10)
    @example(score="4", comment=P_MULTI, slot_value=slot)
    @given(score=st.sampled_from(["1", "5", "0", "6", "", "²", "99999999999999999999"]),
           comment=st.one_of(st.just(""), hostile_text(3000)),
           slot_value=st.sampled_from([slot, slot, "", "q99999999999999999999f1t2", "<script>alert(1)</script>"]))
    def partners(score, comment, slot_value):
        check.submit(world.clients["secA"], f"/review/agreements/{world.agreement.id}/partners",
                     {"slot": slot_value, f"{slot}-score": score, f"{slot}-comment": comment}, what="partner rating")
        for ev in db.session.execute(sa.select(PartnerEvaluation)).scalars():
            assert_clean(ev.comment, multiline=True, field="partner comment")
        check.page(world.clients["secB"], f"/review/agreements/{world.agreement.id}/partners",
                   what="partner ratings", allowed=(200,))

    evaluate()
    adjust()
    rules()
    review_settings()
    partners()
    check.saved_at_least_once("evaluate", "adjust points", "partner rating")


# --- notification settings -----------------------------------------------------------------------------


def test_notification_settings_form(app, check, world):
    from coop.reminders.models import NotificationPreference

    client = world.clients["lyA"]
    clock = st.one_of(st.sampled_from(["", "22:00", "07:30", "22：00", "25:00", "7", "99999999999999999999:00",
                                       "00:99999999999999999999", "-1:00", "NaN:00", "1e309:0", "12:00:00", "²:00",
                                       "22:00\x00", " 22 : 00 "]), hostile_text(30))

    @FUZZ
    @given(mode=st.sampled_from(["immediate", "daily", "weekly", "off", "", "bogus"]), start=clock, end=clock,
           kinds=st.lists(st.sampled_from(["activity_upcoming", "agreement_inactive", "signature_pending", "bogus", "", "<b>"]), max_size=3))
    def run(mode, start, end, kinds):
        outcome, page = check.submit(client, "/notifications/settings", {
            "n-email_mode": mode, "n-quiet_start": start, "n-quiet_end": end, "n-email_kinds": kinds},
            what="notification settings")
        assert outcome == "saved"  # always back to the profile, with a flash message
        check.page(client, "/profile", what="profile", allowed=(200,))

    run()
    assert db.session.execute(sa.select(sa.func.count()).select_from(NotificationPreference)).scalar() <= 1


# --- reports: the month parameter --------------------------------------------------------------------------


MONTHS = ["2026-10", "2026/10", "2026年10月", "2026-13", "2026-00", "1999-12", "3000-01", "9999-99", "",
          "99999999999999999999-01", "2026-1e309", "２０２６-１０", "2026-10\x00", "2026-10' OR 1=1 --",
          "<script>alert(1)</script>", "2026-10/../../etc", "NaN", "-1", "2027-01"]


def test_report_month_parameters(app, check, world, fast_render):
    admin = world.clients["admin"]
    month = st.one_of(st.sampled_from(MONTHS), hostile_text(60))

    @FUZZ
    @given(kind=st.sampled_from(["agreement", "organization", "committee", "", "bogus"]), month=month,
           subject=st.sampled_from(["agreement", "A", "", "²", "99999999999999999999", "-1", "x"]))
    def generate(kind, month, subject):
        subject_id = {"agreement": str(world.agreement.id), "A": str(world.A.id)}.get(subject, subject)
        resp = admin.post("/reports/generate", data={"kind": kind, "month": month, "subject_id": subject_id})
        check.no_5xx(resp, f"generate {kind} {month!r} {subject_id!r}")
        assert resp.status_code in (302, 400, 403, 404)
        if resp.status_code == 302:
            check.page(admin, assert_local_redirect(resp), what="report page after generate", allowed=(200, 302, 404))

    @FUZZ
    @given(month=month, kind=st.one_of(st.sampled_from(["", "agreement", "committee", "bogus"]), hostile_text(30)),
           page=numbers("1"), org=st.sampled_from(["", "G", "²", "99999999999999999999"]))
    def pages(month, kind, page, org):
        check.page(admin, "/reports/", query_string={"month": month, "kind": kind, "page": page},
                   what=f"reports list month={month!r} page={page!r}")
        path_month = quote(month, safe="")
        org_value = str(world.G.id) if org == "G" else org
        for url in (f"/reports/agreements/{world.agreement.id}/{path_month}",
                    f"/reports/organizations/{world.A.id}/{path_month}",
                    f"/reports/committee/{path_month}"):
            check.page(admin, url, query_string={"org": org_value} if "committee" in url else None,
                       what=f"GET {url}")

    generate()
    pages()


# --- cockpit and list filters ----------------------------------------------------------------------------


PERIODS = ["2026-07", "2026-Q3", "2026", "2026-q4", "2026-13", "2026-Q5", "1999", "3000", "2999-12", "", "2026-7",
           "99999999999999999999", "2026-Q3' OR 1=1 --", "２０２６-０７", "2026-07\n", "2026 - 07", "<script>alert(1)</script>"]
ID_JUNK = ["", "²", "99999999999999999999", "-1", "0", "abc", "1e309", "NaN", "9223372036854775808", "１", "1 OR 1=1"]


def _id_or(world, key):
    mapping = {"G": world.G.id, "A": world.A.id, "B": world.B.id, "AGR": world.agreement.id}
    return str(mapping[key]) if key in mapping else key


def test_cockpit_query_parameters(app, check, world, make_activity):
    new_activity(world, make_activity)
    period = st.one_of(st.sampled_from(PERIODS), hostile_text(40))
    ids = st.sampled_from(ID_JUNK + ["G", "A", "B", "AGR"])

    @FUZZ
    @given(period=period, org=ids, relation=st.one_of(st.sampled_from(["", "company", "school", "bogus"]),
                                                     hostile_text(20)),
           category=st.one_of(st.sampled_from(["", "study", "bogus"]), hostile_text(20)),
           sort=st.sampled_from(["", "status", "org", "<b>"]), page=numbers("1"),
           year=numbers("2026"), quarter=numbers("3"), agreement=ids,
           who=st.sampled_from(["reviewer", "admin"]))
    def run(period, org, relation, category, sort, page, year, quarter, agreement, who):
        client = world.clients[who]
        org_id, agreement_id = _id_or(world, org), _id_or(world, agreement)
        cockpit = {"period": period, "org": org_id, "relation": relation, "category": category, "sort": sort,
                   "page": page}
        check.page(client, "/review/", query_string=cockpit, what=f"cockpit {cockpit}")
        check.page(client, "/review/export/cockpit.xlsx", query_string=cockpit, what=f"cockpit export {cockpit}")
        check.page(client, "/review/cell", query_string={"agreement_id": agreement_id, "category": category,
                                                         "period": period}, what="cockpit cell")
        yq = {"year": year, "quarter": quarter}
        for url in ("/review/scores", "/review/typical", "/review/ranking", f"/review/scores/{world.A.id}"):
            check.page(client, url, query_string=yq, what=f"{url} {yq}")
        check.page(client, "/review/rules", query_string={"scope": org_id}, what="rules scope")
        check.page(client, "/review/settings", query_string={"scope": org_id}, what="settings scope")

    run()


def test_list_page_filters(app, check, world, make_activity):
    new_activity(world, make_activity, title="<script>alert(1)</script>联学", place='"><img src=x onerror=alert(1)>')
    ids = st.sampled_from(ID_JUNK + ["A", "B", "AGR"])
    q = st.one_of(st.just(""), hostile_text(300))

    @FUZZ
    @given(q=q, status=st.one_of(st.sampled_from(["", "active", "draft", "held", "planned", "bogus"]), hostile_text(20)),
           party=ids, expiring=st.sampled_from(["", "y", "1", "\x00"]), page=numbers("1"),
           category=st.one_of(st.sampled_from(["", "study", "bogus"]), hostile_text(20)),
           date_from=dates(""), date_to=dates(""),
           confirmation=st.sampled_from(["", "pending", "confirmed", "bogus"]),
           month=st.one_of(st.sampled_from(MONTHS), hostile_text(30)),
           scope=st.sampled_from(["", "mine", "committee", "bogus"]),
           who=st.sampled_from(["lyA", "reviewer", "admin"]))
    def run(q, status, party, expiring, page, category, date_from, date_to, confirmation, month, scope, who):
        client = world.clients[who]
        party_id = _id_or(world, party)
        check.page(client, "/agreements/", query_string={"q": q, "status": status, "party": party_id,
                                                         "expiring": expiring, "page": page}, what="agreement list")
        ledger = {"q": q, "category": category, "date_from": date_from, "date_to": date_to, "status": status,
                  "confirmation": confirmation, "partner": party_id, "agreement": party_id, "page": page}
        for url in ("/activities/", "/activities/committee", f"/activities/agreement/{world.agreement.id}",
                    f"/activities/org/{world.A.id}"):
            check.page(client, url, query_string=ledger, what=f"ledger {url}")
        check.page(client, "/activities/export.csv", query_string={**ledger, "scope": scope, "agreement_id": party_id},
                   what="ledger export")
        check.page(client, "/activities/calendar", query_string={"month": month, "scope": scope,
                                                                 "agreement_id": party_id}, what="calendar")
        check.page(client, "/orgs/", query_string={"q": q, "inactive": expiring}, what="organization tree")
        check.page(client, "/notifications", query_string={"page": page, "unread": expiring}, what="notifications")
        check.page(client, "/admin/users", query_string={"q": q, "page": page}, what="user list")
        check.page(client, "/audit/", query_string={"q": q, "kind": status, "page": page}, what="audit log")
        check.page(client, "/activities/new", query_string={"agreement": party_id, "date": date_from,
                                                            "status": status, "category": category},
                   what="new activity form")
        check.page(client, "/orgs/new", query_string={"parent": party_id}, what="new organization form")
        check.page(client, "/agreements/new", query_string={"template": q[:50]}, what="new agreement form")
        check.page(client, "/verify", query_string={"code": q[:60]}, what="verify code")

    run()


# --- PDFs: nothing fetched from outside static/, user text printed as text ---------------------------------


PDF_PAYLOADS = [
    '<img src="http://203.0.113.1/x.png">',
    '<link rel=stylesheet href="file:///etc/passwd">',
    '<p style="background: url(http://203.0.113.1/bg.png)">背景</p>',
    "<script>alert(1)</script>",
]


@pytest.fixture
def fetch_log(monkeypatch):
    """Every URL WeasyPrint asks coop/pdf.py's fetcher for, and whether it was served or refused."""
    import coop.pdf as pdf

    log: list[tuple[str, str]] = []
    real = pdf.static_url_fetcher

    def recording(static_folder=None):
        fetcher = real(static_folder)
        inner = fetcher.fetch

        def fetch(url, *args, **kwargs):
            try:
                result = inner(url, *args, **kwargs)
            except Exception:
                log.append(("refused", url))
                raise
            log.append(("served", url))
            return result

        fetcher.fetch = fetch
        return fetcher

    monkeypatch.setattr(pdf, "static_url_fetcher", recording)
    return log


def _pdf_text(data: bytes) -> str:
    out = subprocess.run(["pdftotext", "-raw", "-", "-"], input=data, capture_output=True, check=True, timeout=60)
    return re.sub(r"\s+", "", out.stdout.decode("utf-8"))


def _assert_fetched_only_static(log):
    from coop.pdf import DEFAULT_STATIC_FOLDER

    static = DEFAULT_STATIC_FOLDER.resolve().as_uri() + "/"
    assert log, "the fetcher was not used at all (the stylesheet should come through it)"
    outside = [url for _, url in log if not (url.startswith("data:") or url.startswith(static))]
    assert not outside, f"WeasyPrint tried to fetch {outside}"
    assert not [url for verdict, url in log if verdict == "refused"], log


def test_fetcher_refuses_everything_outside_static():
    from coop.pdf import DEFAULT_STATIC_FOLDER, ResourceRefused, static_url_fetcher

    fetcher = static_url_fetcher()
    for url in ("http://203.0.113.1/x.png", "https://203.0.113.1/x.css", "file:///etc/passwd",
                f"{DEFAULT_STATIC_FOLDER.as_uri()}/../../../../etc/passwd", "ftp://203.0.113.1/x",
                "file://203.0.113.1/share/x.png", "gopher://x/"):
        with pytest.raises(ResourceRefused):
            fetcher.fetch(url)
    served = fetcher.fetch(f"{DEFAULT_STATIC_FOLDER.resolve().as_uri()}/css/pdf.css")
    assert served is not None


def test_agreement_pdf_fetches_nothing_and_prints_payloads_as_text(app, check, world, fetch_log):
    from agreements import operations as ops
    from tests.fixtures.agreements import draft_content

    content = draft_content(
        world.A, world.B, title=PDF_PAYLOADS[0], number="共建〔2026〕1号",
        purpose="\n".join(PDF_PAYLOADS),
        commitments={"study": (4, PDF_PAYLOADS[1]), "event": (2, PDF_PAYLOADS[2])},
        clauses=PDF_PAYLOADS[1:],
    )
    draft = ops.create_draft(content, actor=world.secA)
    db.session.commit()
    resp = world.clients["secA"].get(f"/agreements/{draft.id}/preview.pdf")
    check.no_5xx(resp, "agreement preview")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    _assert_fetched_only_static(fetch_log)
    text = _pdf_text(resp.data)
    for payload in PDF_PAYLOADS:
        assert re.sub(r"\s+", "", payload) in text, f"{payload!r} not printed as text"


def test_report_pdf_fetches_nothing_and_prints_payloads_as_text(app, check, world, make_activity, fetch_log):
    from coop.reports.models import MonthlyReport

    for i, payload in enumerate(PDF_PAYLOADS):
        new_activity(world, make_activity, title=payload, place=PDF_PAYLOADS[(i + 1) % len(PDF_PAYLOADS)],
                     held_on=date(2026, 10, 5 + i), summary=payload, outcome=payload)
    world.agreement.title = PDF_PAYLOADS[1]
    db.session.commit()
    resp = world.clients["admin"].post("/reports/generate", data={
        "kind": "agreement", "month": "2026-10", "subject_id": str(world.agreement.id)})
    check.no_5xx(resp, "generate report")
    assert resp.status_code == 302
    report = db.session.execute(sa.select(MonthlyReport).order_by(MonthlyReport.id.desc())).scalars().first()
    assert report is not None
    _assert_fetched_only_static(fetch_log)
    pdf = world.clients["admin"].get(f"/reports/{report.id}/download")
    assert pdf.status_code == 200
    data = pdf.data
    pdf.close()
    text = _pdf_text(data)
    for payload in PDF_PAYLOADS:
        assert re.sub(r"\s+", "", payload) in text, f"{payload!r} not printed as text"
