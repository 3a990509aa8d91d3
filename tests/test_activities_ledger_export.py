"""The streamed group-scale export (coop/activities/ledger_export.py) writes exactly the ledger_io rows."""
import io
from datetime import date

import sqlalchemy as sa

from coop.activities.ledger_export import export_xlsx_streamed, ledger_columns, stream_ledger_rows
from coop.activities.ledger_io import ledger_rows
from coop.activities.models import Activity
from coop.activities.queries import LEDGER_LOADS
from coop.demo_large import LargeSpec, seed_large
from coop.extensions import db


def test_streamed_rows_equal_ledger_rows(app, tmp_path, monkeypatch):
    seed_large(lambda s: None, spec=LargeSpec.scaled(0.01), today=date(2026, 11, 20), upload_dir=tmp_path)
    monkeypatch.setattr("coop.activities.ledger_export.BATCH", 70)  # several batches
    stmt = (sa.select(Activity).where(Activity.held_on >= date(2025, 1, 1)).options(*LEDGER_LOADS)
            .order_by(Activity.held_on, Activity.start_time, Activity.id))
    expected = list(ledger_rows(db.session.scalars(stmt).all()))
    db.session.expire_all()
    got = list(stream_ledger_rows(stmt))
    assert len(got) > 200 and got == expected
    # The statement's filters carry over; the order is the ledger's (oldest first).
    assert len(db.session.execute(ledger_columns(stmt)).all()) == len(expected)
    buffer = io.BytesIO()
    assert export_xlsx_streamed(stmt, buffer) == len(expected)
