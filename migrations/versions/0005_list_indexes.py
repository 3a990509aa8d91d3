"""list indexes: lists read in index order instead of sorting every visible row (issue 10).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 01:20:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_agreements_updated', 'agreements', ['updated_at', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_agreements_updated', table_name='agreements')
