"""Schema is managed by migrations: from an empty database, `upgrade` builds exactly the models' schema."""
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app import create_app
from coop.extensions import db


def test_upgrade_from_empty_matches_models_and_downgrades(empty_database_url, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": empty_database_url, "SECRET_KEY": "x"},
                     instance_path=str(tmp_path / "inst"))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
        assert diffs == [], f"models and migrations disagree (run `flask db migrate`): {diffs}"
        # The data generation row exists from the start (coop.cache memoises before the first write).
        from coop.cache import current_generation

        generation = current_generation()
        assert generation is not None and generation[2] == 0 and len(generation[1]) == 16
        db.session.remove()
        downgrade(revision="base")
        with db.engine.connect() as conn:
            left = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        assert left == set()
        db.engine.dispose()
