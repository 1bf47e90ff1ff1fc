"""The outcome retention table's first rows (CPIA and MOPI), for a force to adjust in the admin.

- No further action: a review after 180 days (the investigation may reopen).
- Charged: held until a later outcome disposes of the case (CPIA: kept at least until then).
- Convicted: a review by MOPI group; group 1 (public protection) and 2 (other sexual and violent
  offences) after 10 years, group 3 (the rest) and no group given after 6 years.
- Acquitted, discontinued: a review after the 28 days of the appeal period.
- Out-of-court disposal: a review after 6 years (MOPI group 3).

Self-contained: it writes the rows as they are here, and its reverse removes exactly them.
"""

from django.db import migrations

ROWS = [
    ("nfa", 0, False, 180, "No further action: review after 180 days"),
    ("charged", 0, True, None, "Charged: held until the case is disposed of"),
    (
        "convicted",
        0,
        False,
        2192,
        "Convicted, no MOPI group given: as group 3, review after 6 years",
    ),
    ("convicted", 1, False, 3652, "Convicted, MOPI group 1: review every 10 years"),
    ("convicted", 2, False, 3652, "Convicted, MOPI group 2: review after 10 years"),
    ("convicted", 3, False, 2192, "Convicted, MOPI group 3: review after 6 years"),
    ("acquitted", 0, False, 28, "Acquitted: review when the appeal period (28 days) is over"),
    ("discontinued", 0, False, 28, "Discontinued: review after 28 days"),
    ("out_of_court", 0, False, 2192, "Out-of-court disposal: review after 6 years"),
]


def add_rules(apps, schema_editor):
    Rule = apps.get_model("integrations", "OutcomeRetentionRule")
    for outcome, group, until_disposal, days, description in ROWS:
        Rule.objects.get_or_create(
            outcome=outcome,
            mopi_group=group,
            defaults={
                "until_disposal": until_disposal,
                "review_after_days": days,
                "description": description,
            },
        )


def remove_rules(apps, schema_editor):
    Rule = apps.get_model("integrations", "OutcomeRetentionRule")
    for outcome, group, until_disposal, days, _description in ROWS:
        Rule.objects.filter(
            outcome=outcome,
            mopi_group=group,
            until_disposal=until_disposal,
            review_after_days=days,
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_connected_systems_reports_outcomes_webhooks")]

    operations = [migrations.RunPython(add_rules, remove_rules)]
