"""A database made before the chain of custody moved to its own app keeps its rows, its triggers,
its permissions and a valid chain after migrating (real PostgreSQL).

The move is in Django's state only: the tables keep their names. Here the database is stepped back
to the migrations before the move (the content types go back to the evidence app, as an older
database has them), events are written and a group is given the old permissions, then it is
migrated forward and checked."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from custody.audit import audit_verify
from custody.models import AuditEvent
from custody.services import audit_record
from review.services import case_create
from tests import factories as f

BEFORE_MOVE = [("evidence", "0012_audit_tree_append_only_trigger")]


def _migrate(targets=None) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def _triggers(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_move_keeps_its_chain_triggers_and_permissions():
    sergeant = f.user("custody_sergeant")
    case_create(crime_reference="5201234/26", title="Before", borough=f.borough(), actor=sergeant)
    try:
        _migrate(BEFORE_MOVE)
        # As an older database has them: the models' content types in the evidence app.
        old = ContentType.objects.filter(app_label="evidence")
        assert {"auditevent", "case", "export", "evidenceflag"} <= set(
            old.values_list("model", flat=True)
        )
        auditors = Group.objects.create(name="auditors (made before the move)")
        auditors.permissions.set(
            Permission.objects.filter(
                content_type__app_label="evidence", codename__in=["view_auditevent", "view_case"]
            )
        )
        for n in range(5):
            audit_record(
                actor="system:test", action="test.before_move", object_type="test", object_id=n
            )
        call_command("audit_checkpoint")
        events = AuditEvent.objects.count()
        triggers = _triggers("evidence_auditevent") | _triggers("evidence_audittreenode")
        assert len(triggers) == 4

        _migrate()

        assert AuditEvent.objects.count() == events
        assert _triggers("evidence_auditevent") | _triggers("evidence_audittreenode") == triggers
        assert not ContentType.objects.filter(
            app_label="evidence", model__in=["auditevent", "case", "export", "evidenceflag"]
        ).exists()
        kept = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(pk=auditors.pk).permissions.all()
        }
        assert kept == {"custody.view_auditevent", "review.view_case"}
        report = audit_verify()
        assert report.ok and report.events == events, [x.message for x in report.findings]
        call_command("audit_verify")  # exits 1 on any finding
    finally:
        _migrate()
