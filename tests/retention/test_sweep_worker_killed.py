"""A worker killed in the middle of the nightly sweep: the task is delivered again and the sweep
finishes, on real Celery workers, the real Redis broker, PostgreSQL and S3.

The workers run as the Procfile (threads) and docker compose (prefork) run them, on the test
database, from a queue of the test's own. The sweep goes one recording per batch, so it is still
working when its worker is killed with SIGKILL (the whole process group, as when a container is
killed or the OOM killer takes the worker), or only the prefork child running the task.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest
from django.db import connection
from django.utils import timezone

from blobstore import blob_store
from custody.models import AuditEvent
from evidence.models import Recording, RecordingState
from retention.models import DeletionCertificate, SweepRun
from retention.tasks import sweep_expired_recordings_task
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = 60
# The redelivering worker's broker setting: seconds a task stays unacknowledged before Redis gives
# it to another worker (production: bwv/settings.py, three hours).
SHORT_VISIBILITY = 2


def _expired(n: int) -> list[Recording]:
    cam = f.camera()
    store = blob_store()
    rows = []
    for i in range(n):
        rid = uuid.uuid4()
        row = f.recording_row(
            id=rid,
            cam=cam,
            started=timezone.now() - timedelta(days=40, minutes=i),
            storage_key=f"recordings/{rid}/media",
            poster_key=f"recordings/{rid}/poster",
            wrapped_key=b"wrapped",
        )
        store.put(row.storage_key, b"sealed media")
        store.put(row.poster_key, b"sealed poster")
        rows.append(row)
    return rows


def _worker_env(visibility_timeout: int) -> dict[str, str]:
    url = urlsplit(os.environ["DATABASE_URL"])
    test_database = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    return {
        **os.environ,
        "DATABASE_URL": test_database,
        "BWV_CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout),
        "BWV_SWEEP_BATCH_SIZE": "1",
        "BWV_SWEEP_MAX_SHARE": "1",  # the whole test estate is expired: the guard would stop it
    }


def _start_worker(*, pool: str, queue: str, visibility_timeout: int, log: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bwv",
        "worker",
        "--pool",
        pool,
        "--concurrency",
        "1",
        "--queues",
        queue,
        "--hostname",
        f"{uuid.uuid4().hex}@test",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=_worker_env(visibility_timeout),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def _wait_for(condition, *, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout:.0f}s; worker log:\n{log.read_text()[-4000:]}")


def _deleted(ids) -> int:
    return Recording.objects.filter(pk__in=ids, state=RecordingState.DELETED).count()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "pool, kill",
    [
        ("threads", "worker"),  # the Procfile's worker
        ("prefork", "worker"),  # docker compose's worker
        ("prefork", "child"),  # only the pool process running the task dies
    ],
)
def test_a_sweep_whose_worker_is_killed_is_delivered_again_and_finished(pool, kill, tmp_path):
    ids = [r.pk for r in _expired(RECORDINGS)]
    queue = f"test-sweep-{uuid.uuid4().hex}"
    log = tmp_path / "workers.log"
    workers = [_start_worker(pool=pool, queue=queue, visibility_timeout=3600, log=log)]
    try:
        sweep_expired_recordings_task.apply_async(queue=queue)
        _wait_for(lambda: _deleted(ids) >= 3, timeout=40, what="the sweep did not start", log=log)
        first = workers[0]
        if kill == "worker":
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        else:
            (child,) = psutil.Process(first.pid).children()
            child.send_signal(signal.SIGKILL)
        killed_at = _deleted(ids)
        assert killed_at < RECORDINGS, "the sweep finished before its worker was killed"
        assert SweepRun.objects.filter(status=SweepRun.Status.RUNNING).exists()
        if kill == "worker":
            # The task waits, unacknowledged, in Redis; a worker that starts once it has waited
            # longer than the visibility timeout takes it again.
            time.sleep(SHORT_VISIBILITY + 1)
            workers.append(
                _start_worker(pool=pool, queue=queue, visibility_timeout=SHORT_VISIBILITY, log=log)
            )
        # (A prefork child's death is seen by its parent, which gives the task back at once.)
        _wait_for(
            lambda: SweepRun.objects.filter(status=SweepRun.Status.COMPLETED).exists(),
            timeout=45,
            what="the sweep was not delivered again and finished",
            log=log,
        )
    finally:
        for worker in workers:
            _stop(worker)
    runs = list(SweepRun.objects.order_by("pk"))
    assert [run.status for run in runs] == [SweepRun.Status.ABANDONED, SweepRun.Status.COMPLETED]
    assert f"Run {runs[1].pk} closed it" in runs[0].message
    # Every expired recording deleted, each exactly once, with one certificate and one event.
    assert _deleted(ids) == RECORDINGS
    assert DeletionCertificate.objects.filter(recording_id__in=ids).count() == RECORDINGS
    erased = AuditEvent.objects.filter(action="recording.erased")
    assert erased.count() == RECORDINGS == len(set(erased.values_list("object_id", flat=True)))
    assert runs[0].deleted + runs[1].deleted == RECORDINGS
    assert all(blob_store().size(f"recordings/{pk}/media") is None for pk in ids)
