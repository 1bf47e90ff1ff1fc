import importlib

import pytest

from integrations.models import OutcomeRetentionRule


@pytest.fixture
def outcome_table(transactional_db):
    """The outcome retention table as its migration writes it: a test that empties the tables
    (transaction=True) takes the migration's rows with it, so each test puts them back."""
    rows = importlib.import_module("integrations.migrations.0002_outcome_retention_table").ROWS
    for outcome, group, until_disposal, days, description in rows:
        OutcomeRetentionRule.objects.get_or_create(
            outcome=outcome,
            mopi_group=group,
            defaults={
                "until_disposal": until_disposal,
                "review_after_days": days,
                "description": description,
            },
        )
