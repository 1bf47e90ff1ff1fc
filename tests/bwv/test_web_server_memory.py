"""The web server's resident memory does not grow with what it does not need.

A web worker loads its pages without PyAV or NumPy (tens of MiB each, only for the media work
some requests do), and every way the project starts gunicorn uses its settings, which hold each
worker's allocator to two arenas however many threads allocate.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "gunicorn.conf.py"


def _run(tmp_path, script: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "BWV_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_web_worker_serves_its_pages_without_loading_pyav_or_numpy(tmp_path):
    script = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'bwv.settings'\n"
        "from django.core.wsgi import get_wsgi_application\n"
        "get_wsgi_application()\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns  # every view module, as the first request imports them\n"
        "import evidence.ingest, evidence.probe, evidence.redaction, review.exports\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & {'av', 'numpy', 'cv2'})))"
    )
    out = _run(tmp_path, script)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []


# 8 threads allocate at once, as a worker's request threads and storage threads do; glibc would
# give them up to 8 arenas per core.
_ARENAS_SCRIPT = """
import ctypes, threading
{tune}
barrier = threading.Barrier(8)
held = []
def work():
    barrier.wait()
    held.append([bytearray(64 << 10) for _ in range(20)])
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena n:" paragraph per arena, on stderr
"""


def test_a_worker_holds_two_allocator_arenas_however_many_threads_allocate(tmp_path):
    tuned = _run(
        tmp_path,
        _ARENAS_SCRIPT.format(
            tune="import runpy; runpy.run_path('gunicorn.conf.py')['post_fork'](None, None)"
        ),
    )
    untuned = _run(tmp_path, _ARENAS_SCRIPT.format(tune=""))
    assert tuned.returncode == 0 and untuned.returncode == 0, tuned.stderr + untuned.stderr
    assert len(re.findall(r"^Arena \d+:", tuned.stderr, re.M)) == 2
    # The control: the same threads without the settings spread over more arenas.
    assert len(re.findall(r"^Arena \d+:", untuned.stderr, re.M)) > 2


def test_every_way_the_project_starts_gunicorn_uses_its_settings():
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert "gunicorn" in cmd and f'"-c", "{CONFIG}"' in cmd
    procfile = (ROOT / "Procfile.dev").read_text()
    web = shlex.split(next(line for line in procfile.splitlines() if line.startswith("web:")))
    assert web[web.index("-c") + 1] == CONFIG
    for path in ("tests/webserver.py", "bench/ingest.py"):
        assert f'"{CONFIG}"' in (ROOT / path).read_text(), path
