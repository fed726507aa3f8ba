"""carmfg settings, read from the environment.

Defaults give the embedded demo (`make run`): a SQLite file under ``var/`` and Celery
tasks run in-process. ``CARMFG_ENV=production`` (set by docker-compose) turns on the
hardening below and refuses to start with a default secret key, DEBUG on, SQLite or
in-process Celery: a validated GMP system must not start in a half-safe state.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from carmfg.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CARMFG_VAR_DIR") or BASE_DIR / "var")

CARMFG_ENV = (env_str("CARMFG_ENV", "demo") or "demo").lower()
if CARMFG_ENV not in {"demo", "test", "production"}:
    raise ImproperlyConfigured(f"CARMFG_ENV must be demo, test or production, not {CARMFG_ENV!r}")
PRODUCTION = CARMFG_ENV == "production"

DEMO_SECRET_KEY = "carmfg-demo-only-not-a-secret-never-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY") or DEMO_SECRET_KEY
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "guardian",
    "axes",
    "django_htmx",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files: no CDN, CSP 'self'
    "django_filters",
    "carmfg.accounts",
    "carmfg.audit",
    "carmfg.esign",
    "batches",
    "qc",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "carmfg.audit.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "carmfg.accounts.middleware.UserLanguageMiddleware",  # the profile's language beats the browser's
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "carmfg.accounts.middleware.CurrentSiteMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "carmfg.errors.GMPErrorMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "carmfg.urls"
WSGI_APPLICATION = "carmfg.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "carmfg.accounts.context_processors.site_context",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'carmfg.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE transactions take the write lock up front: concurrent writers queue
    # instead of failing with "database is locked" half-way through a GMP write.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
    }
# The password may come separately (DATABASE_PASSWORD or DATABASE_PASSWORD_FILE, a
# Docker secret), so that DATABASE_URL itself never holds a secret.
DATABASE_PASSWORD = env_str("DATABASE_PASSWORD")
if DATABASE_PASSWORD:
    DATABASES["default"]["PASSWORD"] = DATABASE_PASSWORD
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication, lockout, sessions ------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Lock a username on one workstation after repeated failures; never a whole IP
# (a shared cleanroom terminal would lock out every technician at once).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 30) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False

# Idle sessions end: the cookie age slides with every request.
SESSION_IDLE_TIMEOUT_MINUTES = env_int("SESSION_IDLE_TIMEOUT_MINUTES", 15)
SESSION_COOKIE_AGE = SESSION_IDLE_TIMEOUT_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie-less meta tag; keep default

GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False
ANONYMOUS_USER_NAME = None  # no guardian anonymous user: anonymous people see nothing

# --- Browser hardening (all environments) --------------------------------------------
# No page may be framed (clickjacking), and the Content Security Policy lets the browser
# run only our own static scripts and style sheets: no inline script, no third-party
# origin, no plugins. Style *attributes* stay allowed for the server-computed widths of
# progress meters; style elements and every script are 'self' only.
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-elem": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Internationalisation -------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "carmfg" / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = not PRODUCTION  # the demo serves static files without collectstatic
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

# --- Celery -----------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=REDIS_URL is None)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A job is acknowledged only after it finished, and goes back to the queue if the
# worker process dies: a signed batch record must never be silently dropped.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
# A job taken by a worker that then died (SIGKILL, OOM, power) stays "unacked" in Redis
# until a live worker's sweep finds it older than the visibility timeout and puts it
# back. The timeout must exceed the longest task (time limit above) plus the wait of a
# prefetched job, or a slow job would run twice (tasks are idempotent, but twice is
# waste). kombu sweeps every `unacked_restore_interval` s but scans only every
# `unacked_restore_throttle`-th sweep (defaults 10 x 10 = 100 s between scans, which
# added up to 100 s to every recovery): scan on every sweep, every 10 s. A dead
# worker's job is therefore back within visibility timeout + 10 s (measured in
# tests/qc/test_faults_documents.py).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600),
    "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Periodic review of the audit trail (Annex 11 §9): every chain is recomputed daily;
# a broken chain is logged as an error (see carmfg.audit.tasks).
CELERY_BEAT_SCHEDULE = {
    "audit-chain-verify-daily": {
        "task": "carmfg.audit.tasks.audit_chain_verify",
        "schedule": crontab(hour=env_int("AUDIT_VERIFY_HOUR_UTC", 2), minute=30),
    },
    # QC results past their expected date (sample date + turnaround): alert QC and the QPs once.
    "qc-results-overdue-daily": {
        "task": "qc.alerts_tasks.results_overdue_flag",
        "schedule": crontab(hour=env_int("QC_OVERDUE_HOUR_UTC", 5), minute=0),
    },
}

# --- REST API -----------------------------------------------------------------------
KNOX_TOKEN_MODEL = "accounts.ApiToken"  # noqa: S105  (a model name, not a secret)
# knox.AuthToken is swapped out, but knox's own migrations would still create its
# table, with a foreign key to auth_user that Django's flush does not know about: every
# transactional test on PostgreSQL then failed ("cannot truncate a table referenced in a
# foreign key constraint"). Without knox's migrations that table is never created.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(days=env_int("API_TOKEN_TTL_DAYS", 90)),
    "TOKEN_PREFIX": "cmfg_",
    "AUTO_REFRESH": False,
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "EXCEPTION_HANDLER": "carmfg.api.errors.problem_details_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "carmfg API",
    "DESCRIPTION": "Electronic batch records for point-of-care CAR-T manufacturing.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set in the schema (several models have a "status").
    "ENUM_NAME_OVERRIDES": {
        "BatchStateEnum": "batches.models.BatchState",
        "OrderStatusEnum": "batches.models.OrderStatus",
        "DeviationStatusEnum": "batches.models.DeviationStatus",
        "StepStatusEnum": "batches.models.StepStatus",
        "ResultStatusEnum": "qc.models.ResultStatus",
        "DocumentStatusEnum": "qc.models.DocumentStatus",
    },
}

# --- Logging (structlog, JSON in production) ----------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"axes": {"level": "WARNING"}, "weasyprint": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}},
}

# --- E-mail (late-result notifications to physicians and QPs) ------------------------
# Outside production, mails are not sent: the demo writes them as files under var/mail/
# (one per message, readable with any text viewer), other environments print them.
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION
    else "django.core.mail.backends.filebased.EmailBackend" if CARMFG_ENV == "demo"
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_FILE_PATH = Path(env_str("EMAIL_FILE_PATH") or VAR_DIR / "mail")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "carmfg@localhost")

# --- carmfg ---------------------------------------------------------------------------
CARMFG_DEMO_PASSWORD = env_str("CARMFG_DEMO_PASSWORD") or "carmfg-demo-2026"

# Signed PDF batch records (qc.pdfsigning): the hospital's document-signing key (PEM),
# its certificate (PEM, leaf first, then any intermediates) and the CA certificate(s)
# a record must chain to. Unset outside production: a demo CA is made under
# CARMFG_PKI_DIR on first use. Unset in production: signing refuses to run.
CARMFG_SIGNING_KEY_FILE = env_str("CARMFG_SIGNING_KEY_FILE")
CARMFG_SIGNING_KEY_PASSWORD = env_str("CARMFG_SIGNING_KEY_PASSWORD")
CARMFG_SIGNING_CERT_FILE = env_str("CARMFG_SIGNING_CERT_FILE")
CARMFG_SIGNING_CA_FILE = env_str("CARMFG_SIGNING_CA_FILE")
CARMFG_TSA_URL = env_str("CARMFG_TSA_URL")  # RFC 3161 timestamp authority; optional
CARMFG_PKI_DIR = Path(env_str("CARMFG_PKI_DIR") or VAR_DIR / "pki")
CARMFG_VERIFY_UPLOAD_MAX_MB = env_int("CARMFG_VERIFY_UPLOAD_MAX_MB", 50)

# --- Production hardening ----------------------------------------------------------------
if PRODUCTION:
    problems = []
    if SECRET_KEY == DEMO_SECRET_KEY or len(SECRET_KEY) < 50:
        problems.append("SECRET_KEY (or SECRET_KEY_FILE) must be set to a random value of 50+ characters")
    if DEBUG:
        problems.append("DEBUG must be off")
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append("DATABASE_URL must point at PostgreSQL")
    if not REDIS_URL or CELERY_TASK_ALWAYS_EAGER:
        problems.append("REDIS_URL must be set and Celery must not run tasks in-process")
    if set(ALLOWED_HOSTS) & {"*"}:
        problems.append("ALLOWED_HOSTS must name the hosts, not '*'")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems) + ".")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    LOGGING["formatters"]["plain"]["format"] = (
        '{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","message":"%(message)s"}'
    )
