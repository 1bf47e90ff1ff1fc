"""The embedded default boots with no environment at all; production settings pass check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bare_env(tmp_path, **extra) -> dict[str, str]:
    # Nothing of the test run's services or secrets leaks into the child.
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "BWV_VAR_DIR": str(tmp_path / "var"),
        **extra,
    }


def test_embedded_settings_boot_with_no_environment(tmp_path):
    env = _bare_env(tmp_path)
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'bwv.settings'; django.setup()\n"
        "from django.conf import settings as s\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from django.test import Client\n"
        "r = Client().get('/healthz')\n"
        "print(s.DATABASES['default']['ENGINE'], s.STORAGES['default']['BACKEND'],\n"
        "      s.CELERY_BROKER_URL, r.status_code, r.json()['status'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    engine, storage, broker, status, health = out.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert storage == "django.core.files.storage.FileSystemStorage"
    assert broker == "filesystem://"
    assert (status, health) == ("200", "ok")
    # The local secrets were generated into var/, readable by the owner only.
    for name in ("secret_key", "keks", "audit_signing_key"):
        assert (tmp_path / "var" / name).stat().st_mode & 0o077 == 0


def test_check_deploy_is_clean_with_production_variables(tmp_path):
    env = _bare_env(
        tmp_path,
        BWV_PRODUCTION="1",
        DJANGO_SECRET_KEY="x" * 20 + "a-long-random-production-secret-value-0123456789",
        BWV_KEKS="prod1:" + "A" * 43 + "=",
        BWV_AUDIT_SIGNING_KEY="B" * 43 + "=",
        DATABASE_URL="postgres://bwv:pw@db.example:5432/bwv",
        REDIS_URL="redis://redis.example:6379/0",
        BWV_S3_BUCKET="bwv",
        BWV_ALLOWED_HOSTS="bwv.example",
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    env = _bare_env(tmp_path, BWV_PRODUCTION="1")
    out = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "DJANGO_SECRET_KEY" in out.stderr
    assert not (tmp_path / "var" / "secret_key").exists()


def test_a_yes_or_no_setting_that_is_neither_stops_the_start(tmp_path):
    """A typo in BWV_PRODUCTION must not quietly mean "no" (a production run without its checks)."""
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'bwv.settings'; django.setup()"
    )
    for value, ok in [("ture", False), ("1 ", None), ("no", True), ("", True)]:
        env = _bare_env(tmp_path, BWV_PRODUCTION=value)
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok is False:
            assert out.returncode != 0
            assert "BWV_PRODUCTION='ture' is neither yes nor no" in out.stderr
        elif ok is None:  # "1 " is yes: a production start without its secrets refuses to start
            assert out.returncode != 0 and "must be set when BWV_PRODUCTION=1" in out.stderr
        else:
            assert out.returncode == 0, out.stderr


def test_directory_sign_in_takes_its_secret_from_a_file_and_refuses_half_a_configuration(tmp_path):
    secret_file = tmp_path / "oidc_client_secret"
    secret_file.write_text("s3cret-from-a-mounted-file\n")
    directory = {
        "BWV_OIDC_ISSUER": "https://login.example/force/v2.0",
        "BWV_OIDC_CLIENT_ID": "bwv-evidence",
        "BWV_OIDC_ROLE_MAP": '{"bwv-officers-ha": {"role": "officer", "borough": "HA"}}',
    }
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'bwv.settings'; django.setup()\n"
        "from django.conf import settings as s\n"
        "print(s.BWV_OIDC_CLIENT_SECRET, s.BWV_OIDC_ROLE_MAP['bwv-officers-ha']['borough'])\n"
    )

    def run(*args, **extra):
        env = _bare_env(tmp_path, **{**directory, **extra})
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    out = run("-c", script, BWV_OIDC_CLIENT_SECRET_FILE=str(secret_file))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["s3cret-from-a-mounted-file", "HA"]

    out = run("-c", script)  # no secret at all
    assert out.returncode != 0 and "BWV_OIDC_CLIENT_SECRET (or _FILE) are needed" in out.stderr

    out = run("-c", script, BWV_OIDC_CLIENT_SECRET="x", BWV_OIDC_ROLE_MAP="{not json")
    assert out.returncode != 0 and "BWV_OIDC_ROLE_MAP is not JSON" in out.stderr

    # A role map naming a role that does not exist stops the start (manage.py check).
    out = run(
        "manage.py",
        "check",
        BWV_OIDC_CLIENT_SECRET="x",
        BWV_OIDC_ROLE_MAP='{"bwv-chiefs": {"role": "chief_constable"}}',
    )
    assert out.returncode != 0 and "accounts.E001" in out.stderr
    assert "'chief_constable' is not one of" in out.stderr
