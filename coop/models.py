"""Imports every domain's models so SQLAlchemy's metadata (and Alembic) sees all tables.

Each domain adds one import line here when it gains a models.py.
"""
from coop.audit import models as audit_models  # noqa: F401
from coop.auth import models as auth_models  # noqa: F401
from coop.orgs import models as orgs_models  # noqa: F401
from agreements import models as agreements_models  # noqa: F401
from coop.activities import models as activities_models  # noqa: F401
from coop.reports import models as reports_models  # noqa: F401
from coop.reminders import models as reminders_models  # noqa: F401
from coop.review import models as review_models  # noqa: F401
from coop.api import models as api_models  # noqa: F401
from coop import cache as cache_models  # noqa: F401 — data_generations
