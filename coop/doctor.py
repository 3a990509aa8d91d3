"""Machine checks behind `flask doctor`: fonts, HarfBuzz subsetting, database, writable folders."""
from __future__ import annotations

import ctypes.util
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from coop.extensions import db


@dataclass
class Check:
    name: str
    ok: bool
    message: str
    fix: str = ""


def _font_check() -> Check:
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"],  # fixed command, no shell  # nosec B603 B607
                              capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return Check("中文字体", False, "找不到 fontconfig（fc-list）。", "sudo apt-get install fontconfig fonts-noto-cjk")
    needed = ["Noto Serif CJK SC", "Noto Sans CJK SC"]
    missing = [f for f in needed if f not in out]
    if missing:
        return Check("中文字体", False, "缺少 " + "、".join(missing) + "，PDF 中的汉字会显示为方框。",
                     "sudo apt-get install fonts-noto-cjk")
    return Check("中文字体", True, "Noto Serif/Sans CJK SC 已安装。")


def _harfbuzz_check() -> Check:
    if ctypes.util.find_library("harfbuzz-subset"):
        return Check("字体子集化", True, "libharfbuzz-subset 已安装（PDF 生成快速）。")
    return Check("字体子集化", False, "缺少 libharfbuzz-subset，生成 PDF 会慢约 20 倍。",
                 "sudo apt-get install libharfbuzz-subset0")


def _pango_check() -> Check:
    try:
        import weasyprint  # noqa: F401
    except OSError as exc:
        return Check("PDF 引擎", False, f"WeasyPrint 无法加载系统库：{exc}", "sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0")
    return Check("PDF 引擎", True, "WeasyPrint 可用。")


def _db_check() -> Check:
    try:
        db.session.execute(db.text("SELECT 1"))
    except Exception as exc:  # any driver error is worth reporting as-is
        return Check("数据库", False, f"无法连接数据库：{exc.__class__.__name__}: {exc}", "检查 COOP_DATABASE_URL 设置")
    from alembic.runtime.migration import MigrationContext

    # Use the session's own connection: a second SQLite connection would wait on our own write lock.
    rev = MigrationContext.configure(db.session.connection()).get_current_revision()
    if rev is None:
        return Check("数据库", False, "数据库还没有建表。", "flask --app app db upgrade")
    return Check("数据库", True, f"{db.engine.dialect.name} 可连接，迁移版本 {rev}。")


def _folder_check() -> Check:
    inst = Path(current_app.instance_path)
    probe = inst / ".doctor-probe"
    try:
        inst.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check("instance 目录", False, f"{inst} 不可写：{exc}", f"chown -R $(whoami) {inst}")
    free = shutil.disk_usage(inst).free // (1024 * 1024)
    return Check("instance 目录", True, f"{inst} 可写，剩余空间 {free} MB。")


def _poppler_check() -> Check:
    if shutil.which("pdfsig") and shutil.which("pdftotext"):
        return Check("PDF 校验工具", True, "poppler-utils 已安装（pdfsig 可独立校验签名）。")
    return Check("PDF 校验工具", False, "缺少 poppler-utils（pdfsig），测试和独立校验需要它。", "sudo apt-get install poppler-utils")


def run_checks() -> list[Check]:
    """Run every check; each returns a plain-words result."""
    return [_font_check(), _harfbuzz_check(), _pango_check(), _poppler_check(), _db_check(), _folder_check()]
