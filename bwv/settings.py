"""Settings for the BWV evidence manager.

With no environment at all this is the embedded setup: SQLite and media files under `var/`, a Celery
broker that needs no server. Environment variables switch on the real services:

    DATABASE_URL              postgres://user:pass@host:5432/db
    REDIS_URL                 redis://host:6379/0 (Celery broker and cache)
    BWV_S3_BUCKET             switches media to S3; with BWV_S3_ENDPOINT_URL, BWV_S3_REGION,
                              BWV_S3_ACCESS_KEY_ID, BWV_S3_SECRET_ACCESS_KEY (or *_FILE),
                              BWV_S3_OBJECT_LOCK=1 when the bucket has Object Lock
    DJANGO_SECRET_KEY         (or DJANGO_SECRET_KEY_FILE)
    BWV_KEKS                  key-encryption keys, "id:base64key[,id:base64key...]", the first is
                              current (or BWV_KEKS_FILE)
    BWV_AUDIT_SIGNING_KEY     Ed25519 key signing audit checkpoints and export bundles, base64 of
                              32 bytes (or BWV_AUDIT_SIGNING_KEY_FILE)
    BWV_PRODUCTION=1          refuses to start without real secrets, turns on HTTPS-only cookies,
                              HSTS and the other `check --deploy` settings
    BWV_ALLOWED_HOSTS         comma-separated host names
    BWV_VAR_DIR               where the embedded setup keeps its files (default ./var)

Every secret can be given as VAR or as VAR_FILE naming a file that holds it (Docker/Kubernetes
secrets), never in this repository.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BWV_VAR_DIR", BASE_DIR / "var")).resolve()


def env_bool(name: str, default: bool = False) -> bool:
    """A yes/no setting. Anything but a clear yes or no stops the start: a typo in, say,
    BWV_PRODUCTION must not quietly mean "no"."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    text = value.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is neither yes nor no (use 1/0, true/false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    return [v.strip() for v in value.split(",") if v.strip()] if value else default


def env_secret(name: str) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE."""
    if os.environ.get(name):
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return None


def _local_secret(filename: str, make) -> str:
    """A secret generated once into var/ for the embedded setup; never used in production."""
    path = VAR_DIR / filename
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make())
        # Two processes starting at once: the first rename wins, both then read the same file.
        if not path.exists():
            os.replace(tmp, path)
        else:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()


PRODUCTION = env_bool("BWV_PRODUCTION")


def _required_secret(name: str, local_file: str, make) -> str:
    value = env_secret(name)
    if value:
        return value
    if PRODUCTION:
        raise RuntimeError(f"{name} (or {name}_FILE) must be set when BWV_PRODUCTION=1")
    return _local_secret(local_file, make)


SECRET_KEY = _required_secret("DJANGO_SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50))
DEBUG = env_bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env_list("BWV_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("BWV_CSRF_TRUSTED_ORIGINS", [])
SITE_URL = os.environ.get("BWV_SITE_URL", "http://127.0.0.1:8000")
# The one place the force's time zone is named: what people read (pages, mail, reports), "nightly"
# for the schedules and days for the statutory clocks. Storage is always UTC.
TIME_ZONE = "Europe/London"

INSTALLED_APPS = [
    # The admin site is ours (accounts.admin_site): staff *and* verified by the second factor.
    "accounts.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # The form renderer (common.forms) finds the widget templates it does not override here.
    "django.forms",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "oauth2_provider",
    # Ours, from the bottom of the stack up (each imports only those above it in this list).
    "common",
    "custody",
    "devices",
    "evidence",
    "retention",
    "review",
    "estate",
    "accounts",
    "requests_portal",
    "integrations",
    "bwv",
]

MIDDLEWARE = [
    # Outermost: a database that cannot be reached is a 503 with Retry-After, from any layer.
    "bwv.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Ends a directory sign-in's session after BWV_OIDC_SESSION_MAX_SECONDS, however busy (before
    # django-otp, which then marks the anonymous user it leaves as unverified).
    "accounts.middleware.DirectorySessionLifetimeMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "bwv.urls"
WSGI_APPLICATION = "bwv.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "common.context_processors.site",
            ],
        },
    },
]

# Every form renders through one set of templates (templates/django/forms/, after the GOV.UK
# Design System): label, hint, the error at the field, the input, and an error summary on the page.
FORM_RENDERER = "common.forms.FormRenderer"

# The force whose system this is: its name in every page's header and title, its logo (a path
# under static/, e.g. "img/force-logo.svg"; none by default) and the postal address the public
# may write to instead of using the online form (commas separate the lines).
BWV_FORCE_NAME = os.environ.get("BWV_FORCE_NAME", "Metropolitan Police")
BWV_FORCE_LOGO = os.environ.get("BWV_FORCE_LOGO", "")
BWV_FORCE_POSTAL_ADDRESS = os.environ.get("BWV_FORCE_POSTAL_ADDRESS", "")

# -- Database ------------------------------------------------------------------------------------
EMBEDDED_DB = not os.environ.get("DATABASE_URL")
# The password can come apart from the URL, from a secret file (DATABASE_PASSWORD_FILE).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'bwv.sqlite3'}",
        conn_max_age=env_int("BWV_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if env_secret("DATABASE_PASSWORD"):
    DATABASES["default"]["PASSWORD"] = env_secret("DATABASE_PASSWORD")
# A persistent connection belongs to its thread: a server that runs each request in a new thread
# (Django's threaded server, some ASGI set-ups) opens a connection per request, several
# milliseconds each, which a player's stream of Range requests pays again and again. With
# BWV_DB_POOL_SIZE (PostgreSQL only) a process keeps up to that many connections in a psycopg
# pool shared by its threads instead; pooled connections are not persistent ones, so CONN_MAX_AGE
# is 0 then. gunicorn's threads live as long as their worker and keep their connections anyway.
DB_POOL_SIZE = env_int("BWV_DB_POOL_SIZE", 0)
if DB_POOL_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_SIZE,
        # A request that finds every connection busy waits this long, then fails (a 503 from
        # DatabaseUnavailableMiddleware), rather than queueing for ever.
        "timeout": 10,
    }
if EMBEDDED_DB:
    # Web, worker and beat share one SQLite file: WAL lets readers and the writer overlap, and the
    # timeout makes a writer wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- Cache (rate limits, locks) ------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # Embedded: a file cache is shared by web, worker and beat without a server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# -- Media storage -------------------------------------------------------------------------------
S3_BUCKET = os.environ.get("BWV_S3_BUCKET", "")
S3_OBJECT_LOCK = env_bool("BWV_S3_OBJECT_LOCK")
MEDIA_ROOT = VAR_DIR / "media"
if S3_BUCKET:
    default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": os.environ.get("BWV_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("BWV_S3_REGION") or None,
            "access_key": env_secret("BWV_S3_ACCESS_KEY_ID"),
            "secret_key": env_secret("BWV_S3_SECRET_ACCESS_KEY"),
            "addressing_style": os.environ.get("BWV_S3_ADDRESSING_STYLE", "path"),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
            "signature_version": "s3v4",
        },
    }
else:
    default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "file_permissions_mode": 0o600},
    }
STORAGES = {
    "default": default_storage,
    "staticfiles": {"BACKEND": "common.storage.StaticFilesStorage"},
}
if DEBUG or os.environ.get("BWV_PLAIN_STATIC"):
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served at the site's root: /favicon.ico, which browsers and crawlers ask for without being told.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"

# -- Encryption at rest --------------------------------------------------------------------------
# Key-encryption keys wrap each recording's data key. The first is used for new recordings; the
# others are kept so that older recordings can still be unwrapped after a rotation.
_keks = _required_secret(
    "BWV_KEKS", "keks", lambda: "local1:" + base64.b64encode(secrets.token_bytes(32)).decode()
)
BWV_KEKS: dict[str, bytes] = {}
for _item in _keks.split(","):
    _kid, _, _b64 = _item.strip().partition(":")
    BWV_KEKS[_kid] = base64.b64decode(_b64)
BWV_KEK_CURRENT = _keks.split(",")[0].strip().partition(":")[0]

# -- Retention -----------------------------------------------------------------------------------
# Apps never import an app above them (import-linter, `make lint`). The footage store dates each
# new recording with the retention period, which is the retention app's to say (its default
# policy): it asks through the function named here, the one place the two are wired together.
BWV_RETENTION_PERIOD = "retention.selectors.default_retention_days"
BWV_RETENTION_DAYS = env_int("BWV_RETENTION_DAYS", 31)
# Every recording is kept at least this many days after it reached the server, however old its
# start, so a camera docked late is not erased before anyone could look at it. 0 switches it off.
BWV_MIN_REVIEW_DAYS = max(0, env_int("BWV_MIN_REVIEW_DAYS", 7))
# Blast-radius guard: a run that would delete more than this share of the stored recordings (and
# more than BWV_SWEEP_GUARD_MIN of them) stops and alerts instead. A nightly run deletes about
# 1/31 of the estate; a week of missed nights about a quarter.
BWV_SWEEP_MAX_SHARE = float(os.environ.get("BWV_SWEEP_MAX_SHARE", "0.3"))
BWV_SWEEP_GUARD_MIN = env_int("BWV_SWEEP_GUARD_MIN", 50)
# Recordings claimed and deleted per batch (one S3 DeleteObjects of up to 1,000 keys holds 500
# recordings' media and posters).
BWV_SWEEP_BATCH_SIZE = env_int("BWV_SWEEP_BATCH_SIZE", 500)
# A batch whose objects storage will not delete is tried this many times in all, waiting
# BWV_SWEEP_STORAGE_RETRY_SECONDS, then twice that, and so on, between tries (about 15 s in all by
# default: enough for a blip, short enough that an outage stops the run at once). Then the run
# stops and gives back what it claimed.
BWV_SWEEP_STORAGE_ATTEMPTS = env_int("BWV_SWEEP_STORAGE_ATTEMPTS", 3)
BWV_SWEEP_STORAGE_RETRY_SECONDS = float(os.environ.get("BWV_SWEEP_STORAGE_RETRY_SECONDS", "5"))

# -- Dispatch incidents, crime reports and outcomes (integrations) ----------------------------------
# A recording is tagged with an incident when it overlaps an attending officer's arrival to clear,
# widened by this many minutes either side (officers start recording on the way, or stop late).
BWV_INCIDENT_TAG_MARGIN_MINUTES = max(0, env_int("BWV_INCIDENT_TAG_MARGIN_MINUTES", 10))
# The force's choice: footage a crime report's incidents offer to its case waits for the officer
# in the case to confirm it as evidence (0), or is flagged as evidence and added at once (1).
BWV_CASE_CANDIDATES_AUTO_FLAG = env_bool("BWV_CASE_CANDIDATES_AUTO_FLAG")
# The incident view plays a recording beside the footage of its borough recorded at the same time;
# where both clips carry GPS, only those recorded within this many metres of each other (clips
# without a position are kept: the place cannot rule them out). At most BWV_INCIDENT_VIEW_MAX
# play together; the rest are listed with links.
BWV_INCIDENT_VIEW_DISTANCE_METRES = max(0, env_int("BWV_INCIDENT_VIEW_DISTANCE_METRES", 500))
BWV_INCIDENT_VIEW_MAX = max(2, env_int("BWV_INCIDENT_VIEW_MAX", 6))
# The largest body a connected system may send in one call.
BWV_INTEGRATION_MAX_BYTES = env_int("BWV_INTEGRATION_MAX_BYTES", 256 * 1024)
# Outbound webhooks: the first wait after a failed delivery, doubled after each failure up to the
# longest wait (shorter than the broker's visibility timeout); a delivery still failing after
# BWV_WEBHOOK_GIVE_UP_HOURS is set aside as failed (its stream waits) until an admin replays it.
BWV_WEBHOOK_RETRY_SECONDS = float(os.environ.get("BWV_WEBHOOK_RETRY_SECONDS", "10"))
BWV_WEBHOOK_RETRY_MAX_SECONDS = float(os.environ.get("BWV_WEBHOOK_RETRY_MAX_SECONDS", "600"))
BWV_WEBHOOK_GIVE_UP_HOURS = env_int("BWV_WEBHOOK_GIVE_UP_HOURS", 72)
BWV_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("BWV_WEBHOOK_TIMEOUT_SECONDS", "10"))

# Crime references in the force's format; the default is the Met's CRIS style, e.g. 5201234/26.
BWV_CRIME_REF_PATTERN = os.environ.get("BWV_CRIME_REF_PATTERN", r"\d{7}/\d{2}")
BWV_CRIME_REF_EXAMPLE = os.environ.get("BWV_CRIME_REF_EXAMPLE", "5201234/26")

# -- Chain of custody ----------------------------------------------------------------------------
# Ed25519 key that signs the audit chain's checkpoints and the export bundles: base64 of the 32-byte
# private key (or BWV_AUDIT_SIGNING_KEY_FILE). Public keys of earlier signing keys, base64 and
# comma-separated, keep old checkpoints verifiable after a rotation.
BWV_AUDIT_SIGNING_KEY = _required_secret(
    "BWV_AUDIT_SIGNING_KEY",
    "audit_signing_key",
    lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
)
BWV_AUDIT_OLD_PUBLIC_KEYS = env_list("BWV_AUDIT_OLD_PUBLIC_KEYS", [])
# Checkpoints live in the media bucket (under Object Lock, GOVERNANCE retention, where it has it),
# out of the database's reach; locally under var/.
BWV_AUDIT_CHECKPOINT_PREFIX = os.environ.get("BWV_AUDIT_CHECKPOINT_PREFIX", "audit-checkpoints/")
BWV_AUDIT_CHECKPOINT_RETAIN_DAYS = env_int("BWV_AUDIT_CHECKPOINT_RETAIN_DAYS", 3650)
# Share links for prosecutors expire after this many days unless a shorter time is chosen.
BWV_SHARE_MAX_DAYS = env_int("BWV_SHARE_MAX_DAYS", 30)

# -- Celery --------------------------------------------------------------------------------------
# How long Redis keeps a delivered task in its unacknowledged set before it hands it to another
# worker, taking the first worker for dead. A worker killed mid-task (OOM killer, a container
# stopped, a machine lost) leaves its tasks there, and redelivery waits this long, so the value
# is explicit: longer than our longest task, and not much longer. The longest is the retention
# sweep. bench/sweep.py measures it at 500-900 recordings a second on a 2-core machine, with one
# object each (a real recording has two, media and poster): three hours delete 3 million or more,
# and the blast-radius guard stops a run of more than 30% of the stored recordings unless it is
# overridden by hand, so three hours cover every nightly run of an estate of up to about 10
# million recordings. A sweep killed at 02:30 runs again by 05:30. A task that outlives the
# timeout is delivered a second time while the first still runs: for the sweep that is two runs
# sharing the work (claims under SKIP LOCKED), safe, only wasteful. Countdowns and retries (ETA)
# must stay shorter: the longest is the legal-hold sync's backoff, 10 minutes. Redis only.
CELERY_VISIBILITY_TIMEOUT = env_int("BWV_CELERY_VISIBILITY_TIMEOUT", 3 * 3600)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
else:
    # Embedded: kombu's filesystem transport needs no server; queues are folders under var/.
    _q = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_q),
        "data_folder_out": str(_q),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "store_processed": False,
    }
    for _folder in ("queue", "control", "processed"):
        (VAR_DIR / "celery" / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_ALWAYS_EAGER = env_bool("BWV_CELERY_EAGER")
# A task is acknowledged when it starts, unless it says it is idempotent: then it is acknowledged
# only once it has finished (acks_late), and given back to the queue if its worker process dies
# under it (reject_on_worker_lost), so it runs again to the end. Each task in */tasks.py says
# which it is, and why.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE  # "nightly" is a London night
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# -- Auth ------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out sign-ins before any password check
    # Passwords; while directory sign-in is on, only for the accounts allowed to keep them.
    "accounts.backends.PasswordBackend",
    # Never checks a credential: it only names the sessions that directory sign-in opened.
    "accounts.backends.DirectoryBackend",
]
# Five wrong passwords for one account from one address lock it for half an hour.
AXES_FAILURE_LIMIT = env_int("BWV_SIGNIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("BWV_SIGNIN_LOCKOUT_MINUTES", 30) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
OTP_TOTP_ISSUER = os.environ.get("BWV_TOTP_ISSUER", "BWV evidence")
# The admin never shows a device's secret (TOTP key, backup codes); our own device admins hide them
# too, this covers any other django-otp admin page.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Backup codes issued at enrolment (each works once): the way back in for someone whose phone is lost.
BWV_BACKUP_CODES = env_int("BWV_BACKUP_CODES", 10)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
SESSION_COOKIE_AGE = env_int("BWV_SESSION_IDLE_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True  # the session age is an idle timeout, not a fixed lifetime
# ...whose refresh is written at most this often when nothing else in the session changed, not on
# every Range request of the player: a session may end this much sooner, never later.
SESSION_ENGINE = "common.sessions"
BWV_SESSION_REFRESH_SECONDS = env_int("BWV_SESSION_REFRESH_SECONDS", 60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
# A form whose CSRF token is missing or stale (a page left open for hours) gets a page in the
# site's layout that says what to do, not Django's bare one.
CSRF_FAILURE_VIEW = "common.error_views.csrf_failure"

# -- Directory sign-in (OpenID Connect) -------------------------------------------------------------
# On when an issuer is set: staff sign in with the force's directory (Entra ID, Keycloak, ADFS...),
# authorisation code flow with PKCE, endpoints and keys from the issuer's discovery document. See
# accounts/directory.py for what is checked, and the README for registering the application.
BWV_OIDC_ISSUER = os.environ.get("BWV_OIDC_ISSUER", "").strip()
BWV_OIDC_CLIENT_ID = os.environ.get("BWV_OIDC_CLIENT_ID", "").strip()
BWV_OIDC_CLIENT_SECRET = env_secret("BWV_OIDC_CLIENT_SECRET") or ""
if BWV_OIDC_ISSUER and not (BWV_OIDC_CLIENT_ID and BWV_OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured(
        "BWV_OIDC_ISSUER is set: BWV_OIDC_CLIENT_ID and BWV_OIDC_CLIENT_SECRET (or _FILE) are needed"
    )
if BWV_OIDC_ISSUER and PRODUCTION and not BWV_OIDC_ISSUER.startswith("https://"):
    raise ImproperlyConfigured("BWV_OIDC_ISSUER must be an https:// URL when BWV_PRODUCTION=1")
# What the sign-in button says after "Sign in with".
BWV_OIDC_NAME = os.environ.get("BWV_OIDC_NAME", "").strip() or BWV_FORCE_NAME
BWV_OIDC_SCOPES = os.environ.get("BWV_OIDC_SCOPES", "openid profile email")
# The ID token's claims whose values are looked up in the role map (group ids or names, app roles).
BWV_OIDC_ROLE_CLAIMS = env_list("BWV_OIDC_ROLE_CLAIMS", ["groups", "roles"])
# JSON: {"<claim value>": {"role": "<role>", "borough": "<borough code, optional>"}, ...}, from
# the variable or the file BWV_OIDC_ROLE_MAP_FILE names. Checked by `manage.py check`.
_role_map = env_secret("BWV_OIDC_ROLE_MAP") or "{}"
try:
    BWV_OIDC_ROLE_MAP = json.loads(_role_map)
except ValueError as exc:
    raise ImproperlyConfigured(f"BWV_OIDC_ROLE_MAP is not JSON: {exc}") from exc
# A session from the directory counts as verified by a second factor only when the ID token's
# `amr` holds one of these values, or its `acr` is one of these; otherwise the TOTP step is asked.
BWV_OIDC_MFA_AMR = env_list("BWV_OIDC_MFA_AMR", ["mfa"])
BWV_OIDC_MFA_ACR = env_list("BWV_OIDC_MFA_ACR", [])
# Sent as acr_values in the authorisation request when set (e.g. Keycloak's level of
# authentication that asks for the second factor).
BWV_OIDC_ACR_VALUES = os.environ.get("BWV_OIDC_ACR_VALUES", "").strip()
# A claim holding the collar or staff number: links the person to their officer record.
BWV_OIDC_STAFF_NUMBER_CLAIM = os.environ.get("BWV_OIDC_STAFF_NUMBER_CLAIM", "").strip()
# Clock difference allowed between the provider and us when checking exp and iat.
BWV_OIDC_CLOCK_SKEW_SECONDS = env_int("BWV_OIDC_CLOCK_SKEW_SECONDS", 60)
BWV_OIDC_TIMEOUT_SECONDS = env_int("BWV_OIDC_TIMEOUT_SECONDS", 10)
# The longest a session from directory sign-in lasts, however busy (the idle timeout above still
# applies): roles and borough are read from the directory at sign-in, so this bounds how long a
# group taken away there goes on giving access here. Ten hours: a shift and its overrun.
BWV_OIDC_SESSION_MAX_SECONDS = env_int("BWV_OIDC_SESSION_MAX_SECONDS", 10 * 60 * 60)

# -- REST API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
}
# OAuth 2.0 for the force's own systems (dispatch, crime recording): each is a client of its own
# with the client-credentials grant, and may ask only for the scopes its connected system has
# (integrations/oauth.py). Tokens live an hour; a client asks for a new one.
INTEGRATION_SCOPES = {
    "incidents:write": "Send dispatch (CAD) incidents",
    "crime_reports:write": "Send crime reports",
    "outcomes:write": "Send the outcomes of crime reports",
    "evidence:read": "Read the footage tagged by incident and the cases of crime reports",
}
# Named here because a migration of ours points at the client model (Django resolves it by name).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER = {
    "SCOPES": INTEGRATION_SCOPES,
    "DEFAULT_SCOPES": [],
    "SCOPES_BACKEND_CLASS": "integrations.oauth.ConnectedSystemScopes",
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    # The OAuth 2.0 Security BCP (RFC 9700) in full: tokens stored hashed, none taken from a
    # query string, no implicit or password grant (only client credentials are used here).
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BWV evidence manager API",
    "DESCRIPTION": (
        "Dock ingest (tus 1.0), review, flags, cases and retention; and the force's systems "
        "(dispatch, crime recording) with OAuth 2.0 client credentials."
    ),
    "OAUTH2_FLOWS": ["clientCredentials"],
    "OAUTH2_TOKEN_URL": "/api/v1/oauth/token/",
    "OAUTH2_SCOPES": INTEGRATION_SCOPES,
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The API docs page loads Swagger UI from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# -- Content-Security-Policy (django-csp) ---------------------------------------------------------
# Every page's scripts and styles are files served by this site: no inline <script>, <style> or
# style="" anywhere (server-drawn SVG uses classes and presentation attributes), so neither
# 'unsafe-inline' nor a nonce is needed. A script injected into a page does not run, and the site
# cannot be framed, nor its forms posted elsewhere. Swagger UI (/api/docs/) gets `data:` images on
# its own view only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "media-src": ["'self'"],  # the player reads the Range endpoint on this origin
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'"],  # the proof of work may run in a worker
        "frame-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    },
}

# -- Internationalisation --------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
USE_I18N = True
USE_TZ = True

# -- Uploads -----------------------------------------------------------------------------------------
# tus PATCH bodies are streamed by the ingest API, never loaded whole; these limits guard forms.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
BWV_INGEST_MAX_BYTES = env_int("BWV_INGEST_MAX_BYTES", 64 * 1024**3)
BWV_INGEST_EXPIRY_HOURS = env_int("BWV_INGEST_EXPIRY_HOURS", 24)

# -- E-mail -------------------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "BWV_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("BWV_EMAIL_HOST")
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_HOST = os.environ.get("BWV_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("BWV_EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("BWV_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env_secret("BWV_EMAIL_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("BWV_EMAIL_TLS")
DEFAULT_FROM_EMAIL = os.environ.get("BWV_FROM_EMAIL", "bwv-noreply@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_SUBJECT_PREFIX = "[BWV evidence] "
# Who is told when the retention sweep stops (its guard, a storage failure) or Object Lock is not
# protecting evidence: the operations team's addresses. Django also mails them its reports of
# server errors (sensitive form fields are masked in those).
ADMINS = [(address, address) for address in env_list("BWV_ADMIN_EMAILS", [])]

# -- Production hardening (`manage.py check --deploy` is clean with BWV_PRODUCTION=1) -------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("BWV_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("BWV_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("BWV_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# -- Public access requests -------------------------------------------------------------------------
# Candidate footage is every recording of the incident's borough that started within this many
# hours either side of the incident time; all of it is held while the request is open.
BWV_REQUEST_WINDOW_HOURS = env_int("BWV_REQUEST_WINDOW_HOURS", 2)
# After a request closes its preservation holds stay this many days (time for a complaint or a
# review), then are lifted with audit.
BWV_REQUEST_HOLD_GRACE_DAYS = env_int("BWV_REQUEST_HOLD_GRACE_DAYS", 0)
BWV_REQUEST_VERIFY_HOURS = env_int("BWV_REQUEST_VERIFY_HOURS", 48)
BWV_RELEASE_LINK_DAYS = env_int("BWV_RELEASE_LINK_DAYS", 14)
# Abuse limits: submissions per e-mail address per day and per IP address per hour.
BWV_REQUEST_LIMIT_EMAIL_PER_DAY = env_int("BWV_REQUEST_LIMIT_EMAIL_PER_DAY", 3)
BWV_REQUEST_LIMIT_IP_PER_HOUR = env_int("BWV_REQUEST_LIMIT_IP_PER_HOUR", 10)
# Proof of work (ALTCHA): the largest number a browser may have to try (about a second).
BWV_ALTCHA_MAX_NUMBER = env_int("BWV_ALTCHA_MAX_NUMBER", 50_000)
BWV_DISCLOSURE_TEAM_EMAILS = env_list("BWV_DISCLOSURE_TEAM_EMAILS", [])
