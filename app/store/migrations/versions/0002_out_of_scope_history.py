"""The knowledge history records out_of_scope.txt beside playbook.yaml: its text (null in a
version recorded before, whose file is then unknown) and the lines each version added and
removed (JSON).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("knowledge_versions", sa.Column("out_of_scope", sa.Text))
    op.add_column("knowledge_versions", sa.Column("out_of_scope_changes", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("knowledge_versions") as batch:
        batch.drop_column("out_of_scope_changes")
        batch.drop_column("out_of_scope")
