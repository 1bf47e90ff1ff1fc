"""Gunicorn's settings for the web server, wherever it runs (the image, `make run`, the tests'
and benches' servers): `gunicorn -c gunicorn.conf.py bwv.wsgi:application ...`. A file, not a
module of the project: the master process loads it, and importing the project there would load
Django and Celery into a process that only forks workers.

Memory: glibc's allocator gives threads that allocate at once arenas of their own, up to eight
per core, and keeps what is freed in an arena for that arena's later use. An upload's buffers
(a 1 MiB segment, parts of 5 MiB and more) are allocated by whichever request thread or storage
thread handles it, so every arena ends up holding a few uploads' worth of freed buffers and the
resident memory grows with threads × buffers, not with the uploads in progress. Each worker is
therefore held to two arenas, and a buffer of a part's size or more is mapped on its own and
given back to the system when it is freed (glibc would otherwise raise that threshold to the
largest buffer freed so far and keep such buffers in the arenas). The settings are made in the
worker before it starts its threads; they are glibc's, so elsewhere (musl, macOS) nothing is set.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# glibc's mallopt parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 4 << 20  # below a storage part (5 MiB), above a segment and a socket read


def tune_malloc() -> bool:
    """Hold this process to ARENAS arenas and map buffers of MMAP_THRESHOLD or more on their own.
    Returns False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        gnu_get_libc_version = libc.gnu_get_libc_version  # glibc only
    except (OSError, AttributeError):
        return False
    del gnu_get_libc_version
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def post_fork(server, worker) -> None:
    """Gunicorn's hook, in the new worker before its threads start."""
    tune_malloc()
