"""The co-building agreement (结对共建协议) as a document: HTML from templates/pdf/agreement.html, then PDF.

Pure rendering: no database, no app context. The caller turns its models into the ``ctx`` dict
described in :func:`agreement_html`; :func:`render_agreement_pdf` returns the PDF together with the
place reserved for each party's signature, which ``agreements.signing.sign_pdf`` fills.
"""
from __future__ import annotations

import re
from datetime import date

from coop.i18n import N_
from coop.pdf import PdfBox, pdf_jinja_env, render_pdf_layout

TEMPLATE = "pdf/agreement.html"

#: 甲方, 乙方, 丙方 … — the order of ``ctx["parties"]``.
# Chinese in the document; screens translate them (agreements.views.ui_party_label).
PARTY_LABELS = (N_("甲方"), N_("乙方"), N_("丙方"), N_("丁方"), N_("戊方"), N_("己方"), N_("庚方"), N_("辛方"),
                N_("壬方"), N_("癸方"))


def party_label(index: int) -> str:
    """甲方 for 0, 乙方 for 1 …; past the ten heavenly stems, 第11方."""
    return PARTY_LABELS[index] if index < len(PARTY_LABELS) else f"第{index + 1}方"


def signature_box_name(index: int) -> str:
    """The ``data-pdf-box`` name of party ``index``'s signature box."""
    return f"sig-{index}"


def _paragraphs(text: str) -> list[str]:
    # One paragraph per non-empty line: people type purposes in a textarea.
    return [line.strip() for line in re.split(r"\r?\n", text or "") if line.strip()]


def _normalise(ctx: dict) -> dict:
    parties = ctx.get("parties") or []
    if len(parties) < 2:
        raise ValueError("协议至少需要两个共建方。")
    for key in ("starts_on", "ends_on"):
        if not isinstance(ctx.get(key), date):
            raise ValueError(f"协议缺少有效的日期字段：{key}")
    return {
        "title": ctx.get("title") or "党建结对共建协议",
        "number": ctx.get("number") or "",
        "parties": [
            {
                "label": party_label(i),
                "name": p["name"],
                "kind_label": p.get("kind_label") or "",
                "secretary_name": p.get("secretary_name") or "",
                "liaisons": list(p.get("liaisons") or []),
                "signed_on": p.get("signed_on"),
            }
            for i, p in enumerate(parties)
        ],
        "starts_on": ctx["starts_on"],
        "ends_on": ctx["ends_on"],
        "purpose_paragraphs": _paragraphs(ctx.get("purpose") or ""),
        "commitments": [
            {
                "code": c.get("code", ""),
                "name": c["name"],
                "count_per_year": c.get("count_per_year", ""),
                "text": c.get("text") or "",
            }
            for c in ctx.get("commitments") or []
        ],
        "clauses": [c for c in (ctx.get("clauses") or []) if c and c.strip()],
        "verify_url": ctx.get("verify_url") or "",
        "verify_code": ctx.get("verify_code") or "",
        "version": ctx.get("version") or "",
    }


def agreement_html(ctx: dict) -> str:
    """The agreement as HTML (all user text escaped).

    ``ctx`` keys:

    - ``title`` (str): e.g. "党建结对共建协议".
    - ``number`` (str, optional): e.g. "共建〔2026〕3号".
    - ``parties`` (list of dict, two or more, in 甲方/乙方/… order): ``name``, ``kind_label``
      (e.g. "党支部"), ``secretary_name``, ``liaisons`` (list of names), optional ``signed_on``
      (date; printed in the signature block, otherwise "以电子签名时间为准").
    - ``starts_on`` / ``ends_on`` (date): the term.
    - ``purpose`` (str): co-building goals; one paragraph per line.
    - ``commitments`` (list of dict): ``code`` (八联 code), ``name`` (its Chinese name, e.g.
      "党员联学"), ``count_per_year`` (int), ``text`` (what will be done).
    - ``clauses`` (list of str): further numbered clauses (一、二、… continue after the fixed ones).
    - ``verify_url`` (str), ``verify_code`` (str), ``version`` (str or int): shown in the footer with a
      QR code of ``verify_url``.
    """
    return pdf_jinja_env().get_template(TEMPLATE).render(**_normalise(ctx))


def render_agreement_pdf(ctx: dict) -> tuple[bytes, list[PdfBox]]:
    """The agreement PDF and, per party (same order as ``ctx["parties"]``), where its signature goes.

    Each :class:`~coop.pdf.PdfBox` gives the page index and ``(x1, y1, x2, y2)`` in PDF points from
    the bottom-left corner, ready for ``agreements.signing.sign_pdf(page=..., box=...)``.
    """
    rendered = render_pdf_layout(agreement_html(ctx))
    boxes = []
    for index in range(len(ctx["parties"])):
        box = rendered.boxes.get(signature_box_name(index))
        if box is None:  # the template lost its marker: signing would land in the wrong place
            raise RuntimeError(f"签名区域 {signature_box_name(index)} 未在版面中找到。")
        boxes.append(box)
    return rendered.pdf, boxes
