"""A real web server (gunicorn, in its own process group) and a TCP relay to put in front of
PostgreSQL, for faults a `live_server` thread cannot have: a database that is down or drops every
connection at once, a web process killed with SIGKILL and started again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from devtools.localservices import _free_ports, _wait_port

ROOT = Path(__file__).resolve().parents[1]


class TcpRelay:
    """Listens on a loopback port and relays each connection to `target_port`.

    `down()` makes it close every connection it has and every new one at once (what clients of a
    database that restarts see); `up()` relays again."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.relaying = True
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def up(self) -> None:
        self.relaying = True

    def down(self) -> None:
        self.relaying = False
        with self.lock:
            for sock in self.open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
            self.open.clear()

    def close(self) -> None:
        self.down()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self.relaying:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def database_url(settings_dict: dict, *, port: int) -> str:
    """The URL of the test database (`connection.settings_dict`), reached through `port`."""
    user = settings_dict["USER"]
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{credentials}127.0.0.1:{port}/{settings_dict['NAME']}"


class Gunicorn:
    """`gunicorn bwv.wsgi` as in production, on a free loopback port, with its own DATABASE_URL."""

    def __init__(self, *, database_url: str, log: Path):
        self.port = _free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url}
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        command = [
            *(sys.executable, "-m", "gunicorn", "bwv.wsgi:application"),
            *("-c", "gunicorn.conf.py"),  # the web server's settings, as in production
            *("--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "4"),
            *("--timeout", "120", "--access-logfile", "-", "--error-logfile", "-"),
        ]
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_port(self.port, "gunicorn", self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL to the master and its workers at once: nothing is cleaned up."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
        # The port is free again once the kernel has closed the listening socket.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.05)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()

    def access_log(self) -> str:
        return self.log.read_text(errors="replace")
