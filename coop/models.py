"""Imports every domain's models so SQLAlchemy's metadata (and Alembic) sees all tables.

Each domain adds one import line here when it gains a models.py.
"""
from coop.audit import models as audit_models  # noqa: F401
from coop.auth import models as auth_models  # noqa: F401
from coop.orgs import models as orgs_models  # noqa: F401
