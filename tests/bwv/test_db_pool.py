"""BWV_DB_POOL_SIZE: on PostgreSQL a process's threads share a pool of connections, so a server
that runs each request in a new thread does not connect to the database for each request."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# As Django's threaded server does: each request in a new thread, which closes its connections
# when it is done. The backend's process id tells whether the next thread got the same connection.
SCRIPT = """
import os, threading
os.environ["DJANGO_SETTINGS_MODULE"] = "bwv.settings"
import django
django.setup()
from django.conf import settings
from django.db import connection, connections

pids = []

def request():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pids.append(cursor.fetchone()[0])
    connections.close_all()

for _ in range(8):
    thread = threading.Thread(target=request)
    thread.start()
    thread.join()
db = settings.DATABASES["default"]
print(db["CONN_MAX_AGE"], (db.get("OPTIONS") or {}).get("pool", {}).get("max_size"), len(set(pids)))
"""


def _backend_pids(**env) -> tuple[str, str, str]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return tuple(out.stdout.split())


def test_with_a_pool_threads_one_after_another_reuse_its_connections():
    conn_max_age, max_size, connections_used = _backend_pids(BWV_DB_POOL_SIZE="3")
    assert (conn_max_age, max_size) == ("0", "3")  # pooled connections are not persistent ones
    assert int(connections_used) <= 3  # of 8 threads: never more than the pool holds


def test_without_a_pool_each_thread_opens_its_own_connection():
    conn_max_age, max_size, connections_used = _backend_pids(BWV_DB_POOL_SIZE="")
    assert (conn_max_age, max_size) == ("60", "None")
    assert connections_used == "8"
