"""jitportal settings: one module, read from the environment, failing fast.

Every name read here is documented in README.md ("Configuration"). Secrets also
accept a ``NAME_FILE`` variant that points at a file holding the value (Docker
and Kubernetes secrets).

``DEBUG`` defaults to false. With ``DEBUG`` false (production) the process
refuses to start unless ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``JWKS_ENDPOINT`` and
``POMERIUM_JWT_AUDIENCE`` are set; cross-field checks live in
``jitportal/checks.py`` as Django system checks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import environ
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from apps.access import pomerium_targets as _pomerium_targets
from apps.access import zero_clusters as _zero_clusters
from apps.audit.stream import destinations as _audit_stream
from apps.reviews import periods as _review_periods

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def env_secret(name: str, default: str = "") -> str:
    """Read a secret from ``NAME`` or from the file named by ``NAME_FILE``."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            # Name the variable, never the content.
            raise ImproperlyConfigured(
                f"{name}_FILE={file_name} cannot be read: {exc.strerror}"
            ) from None
    return os.environ.get(name, default)


DEBUG = env.bool("DEBUG", default=False)

_missing = [
    name
    for name, value in (
        ("SECRET_KEY", env_secret("SECRET_KEY")),
        ("ALLOWED_HOSTS", os.environ.get("ALLOWED_HOSTS", "")),
        ("JWKS_ENDPOINT", os.environ.get("JWKS_ENDPOINT", "")),
        ("POMERIUM_JWT_AUDIENCE", os.environ.get("POMERIUM_JWT_AUDIENCE", "")),
        # No silent fallback to the demo's SQLite file and filesystem broker.
        ("DATABASE_URL", os.environ.get("DATABASE_URL", "")),
        (
            "CELERY_BROKER_URL",
            os.environ.get("CELERY_BROKER_URL", "") or os.environ.get("REDIS_URL", ""),
        ),
    )
    if not value
]
# ``manage.py verify_audit --file EXPORT`` checks a file an auditor holds: no database, no
# secret, no Pomerium. It runs without production settings, wherever the export is. Read
# from the command line, never from the environment, so no setting can turn the refusal off.
OFFLINE_COMMAND = (
    Path(sys.argv[0]).name == "manage.py"
    and sys.argv[1:2] == ["verify_audit"]
    and any(arg == "--file" or arg.startswith("--file=") for arg in sys.argv[2:])
)
if not DEBUG and _missing and not OFFLINE_COMMAND:
    raise ImproperlyConfigured(
        "Refusing to start in production mode (DEBUG is false) without: "
        + ", ".join(_missing)
        + ". Set them, or set DEBUG=true for local development."
    )

# A random per-process key in development; production must set its own (above).
SECRET_KEY = env_secret("SECRET_KEY") or "dev-only-" + os.urandom(24).hex()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin, its default site the portal's (apps.kit.admin_site).
    "jitportal.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "auditlog",
    "csp",
    "apps.audit",
    "apps.accounts",
    "apps.access",
    "apps.pomerium",
    "apps.notifications",
    "apps.slack",
    "apps.oncall",
    "apps.api",
    "apps.reviews",
    "jitportal.apps.PortalConfig",
]
# Development tools (devtools/: the demo, the dev sign-in proxy, the Zero simulator and
# their commands) only with DEBUG on. Production never installs them and the image does
# not contain them.
if DEBUG:
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    "apps.audit.middleware.RequestContextMiddleware",
    # Every HTML page shows hidden and direction-changing characters escaped ([U+202E]),
    # whatever printed them; outermost but one, so it sees each page as it leaves.
    "apps.kit.middleware.RevealHiddenMiddleware",
    # Outermost after the request context, so every response gets its headers, the
    # identity middleware's 403 pages included.
    "csp.middleware.CSPMiddleware",
    "apps.accounts.middleware.NoStoreMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.accounts.middleware.HealthCheckMiddleware",
    # Outside every layer that reads the database: an outage is a 503, a refusal a clear 403.
    "apps.access.errors.ErrorAnswersMiddleware",
    # /api/ only: CSRF by content type and fetch metadata, JSON errors (apps/api/middleware.py)
    "apps.api.middleware.ApiGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.PomeriumAssertionMiddleware",
    # Every page, the admin included, renders in the zone its person sees (one clock).
    "apps.accounts.timezones.TimeZoneMiddleware",
    "apps.kit.admin_ids.AdminSelectionMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The only way in is a verified Pomerium assertion: no password backend at all.
AUTHENTICATION_BACKENDS = ["apps.accounts.backends.PomeriumAssertionBackend"]
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/"

ROOT_URLCONF = "jitportal.urls"
WSGI_APPLICATION = "jitportal.wsgi.application"

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
                "apps.accounts.context_processors.portal",
                "csp.context_processors.nonce",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=True
):
    # PostgreSQL plans every statement it is sent as text: 2.8 ms to plan the requests list's
    # rows query against 0.5 ms to run it. Server-side binding sends the same text with
    # separate parameters, and psycopg prepares a statement once a connection has run it
    # PREPARE_THRESHOLD times, so a kept connection (CONN_MAX_AGE) plans it once
    # (bench/README.md, "Pages"). Django leaves both off for transaction-pooling PgBouncer
    # before 1.21, which loses prepared statements between transactions; behind such a
    # pooler set DATABASE_PREPARED_STATEMENTS=false (docs/configuration.md).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=env.int("DATABASE_PREPARE_THRESHOLD", default=5),
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Waiting for the write lock beats "database is locked" with a worker beside the web process.
    # BEGIN IMMEDIATE takes the write lock up front, so the audit chain head is read under it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Every date and time Django formats (the admin's lists and forms) names its zone:
# jitportal/formats/en/formats.py.
FORMAT_MODULE_PATH = ["jitportal.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Where `manage.py collectstatic` writes; production serves from its manifest (whitenoise).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security: TLS ends at Pomerium, which sets X-Forwarded-Proto. ----------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# A session is only a cache of the last verified assertion; keep it short. It lives in a
# signed cookie: every request is re-verified anyway, and requests without a cookie (API
# clients, probes behind Pomerium) must not leave rows behind.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response (django-csp): scripts only from our origin or
# with the per-response nonce, no plugins, no framing, forms post only to ourselves.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Pomerium identity -------------------------------------------------------------
JWKS_ENDPOINT = env.str("JWKS_ENDPOINT", default="")
POMERIUM_JWT_AUDIENCE = env.str("POMERIUM_JWT_AUDIENCE", default="")
# Empty: accept the audience host in both of Pomerium's issuer formats
# ("jit.example.com" and "https://jit.example.com/").
POMERIUM_JWT_ISSUER = env.str("POMERIUM_JWT_ISSUER", default="")
POMERIUM_JWT_LEEWAY_SECONDS = env.int("POMERIUM_JWT_LEEWAY_SECONDS", default=60)
# Keys are refreshed at most this often when an unknown kid shows up...
JWKS_MIN_REFRESH_SECONDS = env.int("JWKS_MIN_REFRESH_SECONDS", default=30)
# ...and re-read after this long in any case, so a removed key stops working.
JWKS_CACHE_SECONDS = env.int("JWKS_CACHE_SECONDS", default=3600)
JWKS_TIMEOUT_SECONDS = env.float("JWKS_TIMEOUT_SECONDS", default=5.0)
POMERIUM_SIGN_OUT_URL = env.str("POMERIUM_SIGN_OUT_URL", default="/.pomerium/sign_out")
PORTAL_ADMIN_GROUPS = env.list("PORTAL_ADMIN_GROUPS", default=[])
# Emails are compared normalised (NFKC, case-folded, stripped): apps/accounts/emails.py.
PORTAL_ADMIN_EMAILS = env.list("PORTAL_ADMIN_EMAILS", default=[])
PORTAL_APPROVER_GROUPS = env.list("PORTAL_APPROVER_GROUPS", default=[])
PORTAL_APPROVER_EMAILS = env.list("PORTAL_APPROVER_EMAILS", default=[])
PORTAL_AUDITOR_GROUPS = env.list("PORTAL_AUDITOR_GROUPS", default=[])
PORTAL_AUDITOR_EMAILS = env.list("PORTAL_AUDITOR_EMAILS", default=[])
# How many proxies append to X-Forwarded-For in front of the portal (Pomerium: 1). The
# client address is the entry that many places from the right; entries further left are
# whatever the client sent and are never trusted.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)
# Public URL of the portal, used in links (Pomerium's 403 page, mail, Slack).
PORTAL_URL = env.str("PORTAL_URL", default="http://localhost:8000").rstrip("/")

# --- Pomerium Zero -----------------------------------------------------------------
ZERO_API_URL = env.str("ZERO_API_URL", default="https://console.pomerium.app/api/v0").rstrip("/")
API_USER_TOKEN = env_secret("API_USER_TOKEN")
ORGANIZATION_ID = env.str("ORGANIZATION_ID", default="")
CLUSTER_ID = env.str("CLUSTER_ID", default="")
# More clusters: "name=cluster_id" pairs. CLUSTER_ID is the cluster named "default";
# ZERO_DEFAULT_CLUSTER names the cluster a resource gets when it names none.
# --- Pomerium through ConfigService (Core, Enterprise, Zero; docs/configuration.md) ------
# Core only: its control plane's URL and shared secret; every resource then lives there.
POMERIUM_CORE_URL = env.str("POMERIUM_CORE_URL", default="").rstrip("/")
POMERIUM_SHARED_SECRET = env_secret("POMERIUM_SHARED_SECRET")
# Zero or Enterprise through ConfigService ("api" targets).
POMERIUM_API_TOKEN = env_secret("POMERIUM_API_TOKEN")
POMERIUM_TIMEOUT_SECONDS = env.float("POMERIUM_TIMEOUT_SECONDS", default=10.0)
# Named targets of any flavour: "name=flavour:address" (zero:cluster id, core:URL, api:URL).
try:
    ZERO_CLUSTERS = _zero_clusters.parse(env.str("ZERO_CLUSTERS", default=""))
    ZERO_DEFAULT_CLUSTER = env.str("ZERO_DEFAULT_CLUSTER", default=_zero_clusters.DEFAULT_NAME)
    POMERIUM_TARGETS = _pomerium_targets.parse(env.str("POMERIUM_TARGETS", default=""))
    _pomerium_targets.target_set(
        cluster_id=CLUSTER_ID,
        zero=ZERO_CLUSTERS,
        default_name=ZERO_DEFAULT_CLUSTER,
        core_url=POMERIUM_CORE_URL,
        targets=POMERIUM_TARGETS,
        shared_secret=POMERIUM_SHARED_SECRET,
        api_token=POMERIUM_API_TOKEN,
    )
except (_zero_clusters.ClusterConfigError, _pomerium_targets.TargetConfigError) as _exc:
    raise ImproperlyConfigured(f"{_exc}.") from None
ZERO_AUTH_SCHEME = env.str("ZERO_AUTH_SCHEME", default="Bearer")
ZERO_TIMEOUT_SECONDS = env.float("ZERO_TIMEOUT_SECONDS", default=10.0)
ZERO_APPLY_CHANGESETS = env.bool("ZERO_APPLY_CHANGESETS", default=True)
# The Zero user id the activity log shows on the portal's own writes (docs/zero-api.md,
# "Whose change is it?"); empty: learnt once per cluster from the portal's own write.
ZERO_API_USER_ID = env.str("ZERO_API_USER_ID", default="")
# The lease holder waits this long before each follow-up write, so one write carries a burst.
ZERO_SYNC_SETTLE_SECONDS = env.float("ZERO_SYNC_SETTLE_SECONDS", default=0.3)
# A revocation Zero has not confirmed after this long is flagged and approvers are told.
ZERO_REMOVAL_ALERT_SECONDS = env.int("ZERO_REMOVAL_ALERT_SECONDS", default=120)
ZERO_SYNC_ENABLED = env.bool(
    "ZERO_SYNC_ENABLED", default=bool(API_USER_TOKEN or POMERIUM_CORE_URL or POMERIUM_TARGETS)
)

# --- Access domain -----------------------------------------------------------------
REQUEST_PENDING_TTL_HOURS = env.int("REQUEST_PENDING_TTL_HOURS", default=24)
# Break-glass grants of one person on one resource that may await review at once (ended ones
# included); the next activation is refused, audited and the approvers told.
BREAK_GLASS_MAX_UNREVIEWED = env.int("BREAK_GLASS_MAX_UNREVIEWED", default=1)
if BREAK_GLASS_MAX_UNREVIEWED < 1:
    raise ImproperlyConfigured("BREAK_GLASS_MAX_UNREVIEWED must be at least 1.")
EXPIRY_REMINDER_MINUTES = env.int("EXPIRY_REMINDER_MINUTES", default=15)

# --- Audit stream (docs/audit-stream.md) -------------------------------------------------
# Where the trail is streamed: https://, syslog+tcp://, syslog+tls:// URLs, comma-separated.
try:
    AUDIT_STREAM = [d.url for d in _audit_stream.parse(env.str("AUDIT_STREAM", default=""))]
except _audit_stream.StreamConfigError as _exc:
    raise ImproperlyConfigured(f"{_exc}.") from None
AUDIT_STREAM_TOKEN = env_secret("AUDIT_STREAM_TOKEN")
AUDIT_STREAM_AUTH_SCHEME = env.str("AUDIT_STREAM_AUTH_SCHEME", default="Bearer")
AUDIT_STREAM_CA_FILE = env.str("AUDIT_STREAM_CA_FILE", default="")
AUDIT_STREAM_BATCH = env.int("AUDIT_STREAM_BATCH", default=2000)
AUDIT_STREAM_BATCH_BYTES = env.int("AUDIT_STREAM_BATCH_BYTES", default=2 * 1024 * 1024)
AUDIT_STREAM_TIMEOUT_SECONDS = env.float("AUDIT_STREAM_TIMEOUT_SECONDS", default=10.0)
AUDIT_STREAM_RETRY_BASE_SECONDS = env.float("AUDIT_STREAM_RETRY_BASE_SECONDS", default=1.0)
AUDIT_STREAM_RETRY_MAX_SECONDS = env.float("AUDIT_STREAM_RETRY_MAX_SECONDS", default=60.0)
# A destination failing this long (or refusing at once) alerts the superusers, once.
AUDIT_STREAM_ALERT_AFTER_SECONDS = env.int("AUDIT_STREAM_ALERT_AFTER_SECONDS", default=3600)
_stream_problems = _audit_stream.problems(
    _audit_stream.parse(AUDIT_STREAM),
    production=not DEBUG,
    token=AUDIT_STREAM_TOKEN,
    auth_scheme=AUDIT_STREAM_AUTH_SCHEME,
    ca_file=AUDIT_STREAM_CA_FILE,
    batch=AUDIT_STREAM_BATCH,
    batch_bytes=AUDIT_STREAM_BATCH_BYTES,
    timeout=AUDIT_STREAM_TIMEOUT_SECONDS,
    retry_base=AUDIT_STREAM_RETRY_BASE_SECONDS,
    retry_max=AUDIT_STREAM_RETRY_MAX_SECONDS,
)
if not DEBUG and _stream_problems:
    raise ImproperlyConfigured(f"{_stream_problems[0]}.")

# --- Access reviews (docs/access-reviews.md) ---------------------------------------------
# Grants longer than this, and every break-glass use, since a resource's last review are
# items of their own; a resource's first review looks back ACCESS_REVIEW_FIRST_PERIOD_DAYS.
ACCESS_REVIEW_LONG_GRANT_HOURS = env.int("ACCESS_REVIEW_LONG_GRANT_HOURS", default=24)
ACCESS_REVIEW_FIRST_PERIOD_DAYS = env.int("ACCESS_REVIEW_FIRST_PERIOD_DAYS", default=90)
# Reviewers are reminded this many days before a campaign's due date (0: no reminder).
ACCESS_REVIEW_REMIND_DAYS = env.int("ACCESS_REVIEW_REMIND_DAYS", default=3)
# One recurring campaign over every resource: month | quarter | half-year | year.
ACCESS_REVIEW_EVERY = env.str("ACCESS_REVIEW_EVERY", default="")
ACCESS_REVIEW_OWNER = env.str("ACCESS_REVIEW_OWNER", default="")
ACCESS_REVIEW_DUE_DAYS = env.int("ACCESS_REVIEW_DUE_DAYS", default=14)
ACCESS_REVIEW_REVIEWER_GROUP = env.str("ACCESS_REVIEW_REVIEWER_GROUP", default="")
_review_problems = _review_periods.setting_problems(
    every=ACCESS_REVIEW_EVERY,
    owner=ACCESS_REVIEW_OWNER,
    due_days=ACCESS_REVIEW_DUE_DAYS,
    remind_days=ACCESS_REVIEW_REMIND_DAYS,
    long_grant_hours=ACCESS_REVIEW_LONG_GRANT_HOURS,
    first_period_days=ACCESS_REVIEW_FIRST_PERIOD_DAYS,
)
if _review_problems:
    raise ImproperlyConfigured(f"{_review_problems[0]}.")

# --- Slack app (docs/slack.md) ---------------------------------------------------------
# Optional: with a bot token, resources that name a slack_channel get a message per request
# with Approve / Reject buttons. The signing secret verifies what Slack sends to
# /slack/interactions; without it that endpoint refuses everything.
SLACK_BOT_TOKEN = env_secret("SLACK_BOT_TOKEN")
SLACK_SIGNING_SECRET = env_secret("SLACK_SIGNING_SECRET")
# The Web API base; methods are called as POST {SLACK_API_URL}/{method}.
SLACK_API_URL = env.str("SLACK_API_URL", default="https://slack.com/api").rstrip("/")
SLACK_TIMEOUT_SECONDS = env.int("SLACK_TIMEOUT_SECONDS", default=10)
# Paths reached without a Pomerium assertion: their callers prove who they are otherwise
# (Slack signs each request; the view verifies it). Pomerium must let them through too.
ASSERTION_EXEMPT_PATHS = ("/slack/interactions",)

# --- On call (docs/oncall.md) ----------------------------------------------------------
# Auto-approval rules may name a PagerDuty or Opsgenie schedule; who is on call is read
# live, cached for at most ONCALL_CACHE_SECONDS (never more than 60).
PAGERDUTY_TOKEN = env_secret("PAGERDUTY_TOKEN")
PAGERDUTY_API_URL = env.str("PAGERDUTY_API_URL", default="https://api.pagerduty.com").rstrip("/")
OPSGENIE_API_KEY = env_secret("OPSGENIE_API_KEY")
OPSGENIE_API_URL = env.str("OPSGENIE_API_URL", default="https://api.opsgenie.com").rstrip("/")
ONCALL_CACHE_SECONDS = min(env.int("ONCALL_CACHE_SECONDS", default=60), 60)
ONCALL_TIMEOUT_SECONDS = env.float("ONCALL_TIMEOUT_SECONDS", default=5.0)

# --- Celery ------------------------------------------------------------------------
_default_broker = "filesystem://"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or env.str("REDIS_URL", default="")
CELERY_BROKER_URL = CELERY_BROKER_URL or _default_broker
BROKER_DATA_DIR = Path(env.str("BROKER_DATA_DIR", default=str(BASE_DIR / "demo-data" / "broker")))
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DATA_DIR / "queue"),
        "data_folder_out": str(BROKER_DATA_DIR / "queue"),
        "processed_folder": str(BROKER_DATA_DIR / "processed"),
        "control_folder": str(BROKER_DATA_DIR / "control"),
        "store_processed": False,
    }
# Results are recorded on our own rows; no result backend is needed.
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Three queues, so a slow SMTP server or Slack never delays a revocation reaching Zero:
# the Zero sync on "zero", notices on "notifications", the domain's ticks on "default".
# A worker started without -Q consumes all three (the demo, the tests); docker-compose
# runs one worker for zero+default and one for notifications.
CELERY_TASK_QUEUES = (Queue("zero"), Queue("notifications"), Queue("default"))
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "zero.*": {"queue": "zero"},
    "notifications.*": {"queue": "notifications"},
    "access.notify": {"queue": "notifications"},
}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(BASE_DIR / "demo-data" / "celerybeat-schedule")
)

# --- Mail ----------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# A mail server that accepts and never answers must not hold a worker for ever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="jitportal <jitportal@localhost>")

# --- django-auditlog -------------------------------------------------------------------
# django-auditlog would store the leftmost X-Forwarded-For entry, which the client chooses.
# The chained trail records the trusted address (TRUSTED_PROXY_COUNT) for every entry.
AUDITLOG_DISABLE_REMOTE_ADDR = True
AUDITLOG_INCLUDE_ALL_MODELS = False

# --- Logging ---------------------------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "apps.audit.logging.RequestContextFilter"},
        # A routine 403 or a database outage is one line, never a traceback.
        "routine_errors": {"()": "apps.access.error_log.QuietRoutineErrors"},
    },
    "formatters": {
        "json": {"()": "apps.audit.logging.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context", "routine_errors"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own console handler (DEBUG only) would print every record a second time,
        # unfiltered: Django's records go to ours, once.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
        # Never log request bodies or headers (they carry assertions).
        "django.request": {"level": "WARNING"},
    },
}
