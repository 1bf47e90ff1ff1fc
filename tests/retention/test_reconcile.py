import secrets
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from blobstore import blob_store
from evidence.models import RecordingState
from retention.reconcile import reconcile
from tests import factories as f

pytestmark = pytest.mark.django_db


def _ids(prefix: str, n: int) -> list[uuid.UUID]:
    return [uuid.UUID(f"{prefix}-0000-4000-8000-{i:012x}") for i in range(n)]


def test_reconciliation_finds_orphan_objects_and_missing_objects():
    prefix = secrets.token_hex(4)  # this test's own corner of the shared bucket
    store = blob_store()
    good, missing, gone, uploading = _ids(prefix, 4)
    orphan = uuid.UUID(f"{prefix}-0000-4000-8000-{99:012x}")
    rows = {}
    for rid, state in (
        (good, "available"),
        (missing, "available"),
        (gone, "deleted"),
        (uploading, "uploading"),
    ):
        rows[rid] = f.recording_row(
            id=rid,
            state=state,
            storage_key=f"recordings/{rid}/media",
            poster_key=f"recordings/{rid}/poster",
        )
    for key in (
        f"recordings/{good}/media",
        f"recordings/{good}/poster",
        f"recordings/{missing}/poster",
        f"recordings/{orphan}/media",
    ):
        store.put(key, b"sealed")
    findings = sorted((x.kind, x.key) for x in reconcile(prefix=f"recordings/{prefix}"))
    assert findings == sorted(
        [
            ("missing_object", f"recordings/{missing}/media"),
            ("orphan_object", f"recordings/{orphan}/media"),
        ]
    )
    assert rows[gone].state == RecordingState.DELETED  # a deleted recording expects nothing


def test_the_command_exits_non_zero_when_they_disagree(capsys, settings, tmp_path):
    # The embedded (local files) store, empty but for one orphan: the command must say so.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }
    settings.S3_BUCKET = ""
    settings.MEDIA_ROOT = tmp_path
    blob_store.cache_clear()
    blob_store().put(f"recordings/{uuid.uuid4()}/media", b"sealed")
    with pytest.raises(CommandError):
        call_command("reconcile_storage")
    assert "1 orphan object(s), 0 missing object(s)" in capsys.readouterr().out
