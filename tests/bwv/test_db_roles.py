"""The application's database role can do its work and cannot rewrite history (real PostgreSQL).

Web, worker and beat connect as a role that `manage.py db_grant_app_role` gives an application's
rights (the compose file's migrate service runs it after `migrate`). Here a role is made on the
test server, granted by the same command, and used: first through Django itself (the real audit
append, a recording written and changed), then over a plain connection that tries what someone
holding its password would try against the audit log. Every refusal must come from the role's
rights, not from the audit log's trigger: the trigger can be switched off by whoever owns the
table.
"""

import io
import uuid
from contextlib import contextmanager

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from psycopg import errors, sql

from custody.audit import audit_verify
from custody.models import AuditEvent, AuditTreeNode
from custody.services import audit_record, audit_record_many
from evidence.models import Recording
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def _admin_execute(statement: sql.Composable) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(connection.connection))


@pytest.fixture
def app_role(transactional_db):
    """A login role of its own for this test (roles are cluster-wide), dropped at the end."""
    role = f"bwv_app_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        out = io.StringIO()
        call_command("db_grant_app_role", role, stdout=out)
        assert "append-only on the audit log" in out.getvalue()
        yield role
    finally:
        connection.close()  # in case a test left it connected as the role
        _admin_execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        _admin_execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@contextmanager
def django_connected_as(role: str):
    """Django's own connection, reopened as `role`: the ORM and the audit append run as the
    application would run them."""
    saved = connection.settings_dict["USER"]
    connection.close()
    connection.settings_dict["USER"] = role
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["USER"] = saved


def connect_as(role: str) -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, dbname=db["NAME"], user=role, autocommit=True
    )


def test_the_application_role_appends_to_the_audit_log_and_writes_recordings(app_role):
    before = f.recording_row()
    with django_connected_as(app_role):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == app_role
        # The one-statement append and the many-event append, as the services call them.
        audit_record(
            actor="system:test",
            action="test.appended",
            object_type="test",
            object_id="1",
            justification="the application role appends",
        )
        audit_record_many(
            actor="system:test", action="test.appended", entries=[{"obj": before}, {"obj": before}]
        )
        made = f.recording_row(cam=before.camera)  # inserts a recording (and what it needs)
        Recording.objects.filter(pk=before.pk).update(original_filename="changed.mp4")
        assert AuditEvent.objects.filter(action="test.appended").count() == 3
    assert Recording.objects.get(pk=before.pk).original_filename == "changed.mp4"
    assert Recording.objects.filter(pk=made.pk).exists()
    report = audit_verify(checkpoints=False, workers=1)
    assert report.ok and report.events >= 3, report.findings


AUDIT = AuditEvent._meta.db_table
TREE = AuditTreeNode._meta.db_table
REFUSED = [
    # (what someone with the role's password tries, the start of PostgreSQL's refusal)
    (f"ALTER TABLE {AUDIT} DISABLE TRIGGER audit_no_update_delete", "must be owner"),
    (f"ALTER TABLE {AUDIT} DISABLE TRIGGER ALL", "must be owner"),
    (f"DROP TRIGGER audit_no_update_delete ON {AUDIT}", "must be owner"),
    (f"DROP TRIGGER audit_no_truncate ON {AUDIT}", "must be owner"),
    (f"ALTER TABLE {AUDIT} ADD COLUMN note text", "must be owner"),
    (f"ALTER TABLE {AUDIT} RENAME TO old_audit", "must be owner"),
    (f"DROP TABLE {AUDIT}", "must be owner"),
    ("DROP FUNCTION bwv_audit_append_only() CASCADE", "must be owner"),
    ("SET session_replication_role = replica", "permission denied to set parameter"),
    (f"DELETE FROM {AUDIT}", "permission denied for table"),
    (f"UPDATE {AUDIT} SET body = body", "permission denied for table"),
    (f"TRUNCATE {AUDIT}", "permission denied for table"),
    ("DELETE FROM evidence_auditchainhead", "permission denied for table"),
    (f"DELETE FROM {TREE}", "permission denied for table"),
    (f"UPDATE {TREE} SET hash = hash", "permission denied for table"),
    (f"TRUNCATE {TREE}", "permission denied for table"),
    ("TRUNCATE evidence_auditchainhead", "permission denied for table"),
    ("TRUNCATE evidence_recording", "permission denied for table"),
    (
        "INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())",
        "permission denied for table",
    ),
    ("CREATE TABLE shadow_audit (id int)", "permission denied for schema"),
]


def test_the_application_role_cannot_switch_off_or_get_round_the_audit_trigger(app_role):
    audit_record(actor="system:test", action="test.appended", object_type="test", object_id="1")
    count = AuditEvent.objects.count()
    with connect_as(app_role) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        assert name.startswith("test_")
        refusals = {}
        for statement, expected in REFUSED:
            with pytest.raises(errors.InsufficientPrivilege) as caught:
                conn.execute(statement)
            message = str(caught.value)
            refusals[statement] = message
            assert message.startswith(expected), (statement, message)
            assert "append-only" not in message, (statement, message)  # not the trigger's word
        # The rights it does have on the audit log: read and append.
        assert conn.execute(f"SELECT count(*) FROM {AUDIT}").fetchone()[0] == count
    assert AuditEvent.objects.count() == count
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass "
            "AND NOT tgisinternal ORDER BY tgname",
            [AUDIT],
        )
        assert cursor.fetchall() == [("audit_no_truncate", "O"), ("audit_no_update_delete", "O")]
    report = audit_verify(checkpoints=False, workers=1)
    assert report.ok, report.findings


def test_granting_again_is_harmless_and_a_table_made_later_is_covered(app_role):
    """The migrate service runs the command on every deploy; a later migration's table gets the
    application's rights from the default privileges, and the audit log stays append-only."""
    call_command("db_grant_app_role", app_role, stdout=io.StringIO())
    _admin_execute(sql.SQL("CREATE TABLE later_table (id int)"))
    try:
        with connect_as(app_role) as conn:
            conn.execute("INSERT INTO later_table VALUES (1)")
            conn.execute("UPDATE later_table SET id = 2")
            conn.execute("DELETE FROM later_table")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("TRUNCATE later_table")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(f"DELETE FROM {AUDIT}")
    finally:
        _admin_execute(sql.SQL("DROP TABLE later_table"))


@pytest.mark.parametrize(
    "who", ["superuser", "owner", "member of the owner", "missing", "bad name"]
)
def test_a_role_no_grant_can_limit_is_refused(transactional_db, who):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    role = f"bwv_su_test_{uuid.uuid4().hex[:12]}"
    names = {
        "superuser": role,
        "owner": owner,
        "member of the owner": role,
        "missing": role,
        "bad name": 'x"; DROP TABLE y; --',
    }
    why = {
        "superuser": "is a superuser: no grant can limit it",
        "owner": "no grant can limit it",
        "member of the owner": "is the owning role or one of its members",
        "missing": "does not exist",
        "bad name": "not a plain role name",
    }
    if who == "superuser":
        _admin_execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(role)))
    if who == "member of the owner":  # it would inherit the owner's rights
        _admin_execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        _admin_execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(role))
        )
    try:
        with pytest.raises(CommandError, match=why[who]):
            call_command("db_grant_app_role", names[who], stdout=io.StringIO())
    finally:
        _admin_execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
