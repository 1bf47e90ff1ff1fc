"""The production compose file gives each service the database role it needs and no other.

No container runs here; `make lint` validates the file with docker-compose where it is installed,
and this reads what it says: web, worker and beat hold only the application role's password, the
migrate service alone the owner's, nobody the superuser's but the database itself.
"""

from pathlib import Path
from urllib.parse import urlsplit

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _secrets(service: dict) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}


def test_web_worker_and_beat_connect_as_the_application_role_only():
    for name in ("web", "worker", "beat"):
        service = SERVICES[name]
        env = service["environment"]
        assert urlsplit(env["DATABASE_URL"]).username == "bwv_app", name
        assert env["DATABASE_PASSWORD_FILE"] == "/run/secrets/db_app_password", name
        assert "db_owner_password" not in _secrets(service), name
        assert "postgres_password" not in _secrets(service), name
        assert "migrate" not in str(service.get("command", "")), name


def test_migrations_run_as_the_owner_and_then_grant_the_application_role():
    migrate = SERVICES["migrate"]
    env = migrate["environment"]
    assert urlsplit(env["DATABASE_URL"]).username == "bwv_owner"
    assert env["DATABASE_PASSWORD_FILE"] == "/run/secrets/db_owner_password"
    assert _secrets(migrate) >= {"db_owner_password"}
    assert not _secrets(migrate) & {"db_app_password", "postgres_password"}
    command = " ".join(migrate["command"])
    assert command.index("manage.py migrate") < command.index("manage.py db_grant_app_role bwv_app")


def test_the_database_makes_both_roles_from_their_secrets_on_first_start():
    db = SERVICES["db"]
    assert db["environment"]["POSTGRES_USER"] != "bwv_app"
    assert _secrets(db) == {"postgres_password", "db_owner_password", "db_app_password"}
    mount = next(v for v in db["volumes"] if "docker-entrypoint-initdb.d" in v)
    folder = ROOT / mount.split(":")[0]
    script = "".join(p.read_text() for p in sorted(folder.glob("*.sh")))
    assert "CREATE ROLE bwv_owner LOGIN" in script and "CREATE ROLE bwv_app LOGIN" in script
    assert "SUPERUSER" not in script.replace("NOSUPERUSER", "")
    assert "/run/secrets/db_owner_password" in script and "/run/secrets/db_app_password" in script


def test_the_image_holds_every_package_the_project_installs():
    """The Dockerfile copies each package by name: one added to the project must be added there."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        pattern.rstrip("*")
        for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and len(line.split()) == 3
    }
    ours = {
        app.split(".")[0] for app in settings.INSTALLED_APPS if (ROOT / app.split(".")[0]).is_dir()
    }
    assert ours | {"common", "blobstore"} <= packages, (ours | {"common", "blobstore"}) - packages
    assert packages <= copied, packages - copied
