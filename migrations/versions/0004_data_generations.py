"""data generations: the one-row version counter behind memoised group-scale figures (coop.cache).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 23:20:00

"""
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('data_generations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.String(length=32), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_generations'))
    )
    # The row exists from the start, so figures are memoised before the first write after the upgrade.
    table = sa.table('data_generations', sa.column('id', sa.Integer()), sa.column('epoch', sa.String()),
                     sa.column('n', sa.BigInteger()))
    op.bulk_insert(table, [{'id': 1, 'epoch': secrets.token_hex(8), 'n': 0}])


def downgrade():
    op.drop_table('data_generations')
