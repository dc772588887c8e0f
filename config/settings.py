"""Stagegate settings, read once from the environment.

Two modes:
- development (the default): DEBUG may be on, SQLite under var/, tasks run eagerly;
- production (STAGEGATE_ENV=production): DEBUG is off, SECRET_KEY and ALLOWED_HOSTS are
  required, cookies are secure and HTTPS is enforced, so `manage.py check --deploy` is clean.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("STAGEGATE_VAR_DIR", str(BASE_DIR / "var")))

STAGEGATE_ENV = env_str("STAGEGATE_ENV", "development")
if STAGEGATE_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"STAGEGATE_ENV={STAGEGATE_ENV!r}: use 'development' or 'production'"
    )
PRODUCTION = STAGEGATE_ENV == "production"

DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when STAGEGATE_ENV=production")

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION or not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG=1 (development only)")
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when STAGEGATE_ENV=production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "guardian",
    "simple_history",
    "axes",
    "registry",
    "lineage",
    "governance",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.request_context.RequestContextMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    # The embedded default: an SQLite file under var/, created on first use.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'stagegate.sqlite3'}"
DATABASES = {"default": environ.Env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work while a writer appends; the timeout rides out short write locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env_int("DB_CONN_MAX_AGE", 60, minimum=0))
    DATABASES["default"].setdefault("OPTIONS", {})
    # Values travel apart from the SQL, so that PostgreSQL can keep the plan of a statement a
    # connection runs again and again (psycopg prepares it after DB_PREPARE_THRESHOLD runs):
    # planning was half the database's time on the transition path (bench/RESULTS.md).
    # Behind a pooler in transaction mode that cannot keep prepared statements, set
    # DB_PREPARE_THRESHOLD=off.
    DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", True)
    _prepare = (env_str("DB_PREPARE_THRESHOLD") or "5").strip().lower()
    if _prepare not in ("off", "none", "no"):
        if not _prepare.isdigit():
            raise ImproperlyConfigured(
                f"DB_PREPARE_THRESHOLD={_prepare!r} must be a whole number or 'off'"
            )
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", int(_prepare))
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out account before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, with a user's and their groups' permissions read in one query.
    "registry.access.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # no guardian anonymous user: anonymous visitors see nothing

# Lock an account after repeated failed logins (21 CFR 11.300(d): detect and report attempts
# at unauthorized use). The web login, the admin, the API token endpoint and signature
# password checks all count towards the same limit.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
# Attempts made while locked out count too, and extend the lockout (django-axes' default).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
# 403 with a clear message: JSON on the API, the login form on the web and admin pages.
AXES_HTTP_RESPONSE_CODE = 403
AXES_LOCKOUT_CALLABLE = "registry.accounts.lockout_response"
# Every failed attempt is kept (who, when, from where, locked or not) beside the counters.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False

# Sessions end after a period of inactivity (Part 11 session controls).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_TIMEOUT_MINUTES", 30, minimum=1) * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Largest prediction / data upload accepted, in megabytes.
STAGEGATE_MAX_UPLOAD_MB = env_int("STAGEGATE_MAX_UPLOAD_MB", 200, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# The Ed25519 private key (PEM) that signs audit checkpoints; `manage.py audit_checkpoint
# --generate-key PATH` makes one. Unset in development (DEBUG), a key is made under VAR_DIR
# on first use; unset in production, checkpoints cannot be written (check --deploy warns).
_checkpoint_key = env_str("AUDIT_CHECKPOINT_KEY_FILE")
AUDIT_CHECKPOINT_KEY_FILE = Path(_checkpoint_key) if _checkpoint_key else None
# How long one lineage graph query may run on PostgreSQL before the API answers 503.
LINEAGE_QUERY_TIMEOUT_MS = env_int("LINEAGE_QUERY_TIMEOUT_MS", 10_000, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.BearerOrTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        # django-filter's backend, with filters by related records limited to visible ones.
        "registry.access.VisibleChoicesFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stagegate API",
    "DESCRIPTION": "Governance and compliance registry for machine-learning models.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # One schema name per shared choice set (stage, risk level), used by several fields.
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "registry.choices.Stage",
        "LevelEnum": "registry.choices.Level",
        "RunKindEnum": "lineage.choices.RunKind",
        "RunStatusEnum": "lineage.choices.RunStatus",
        "NodeKindEnum": "lineage.choices.NodeKind",
        "EdgeKindEnum": "lineage.choices.EdgeKind",
        "RequestStatusEnum": "governance.choices.RequestStatus",
        "PolicyStatusEnum": "governance.choices.PolicyStatus",
        "ExportKindEnum": "governance.choices.ExportKind",
        # Exports, fairness audits and monitoring checks share one task status set.
        "TaskStatusEnum": "governance.models.fairness.AuditStatus",
        "MonitoringKindEnum": "governance.models.monitoring.MonitoringKind",
        "TicketStatusEnum": "governance.models.monitoring.TicketStatus",
        "PlanStatusEnum": "governance.models.monitoring.PlanStatus",
    },
}

# Celery: with no broker configured, tasks run eagerly in the web process (embedded default).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or None
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Each tick queues only the models whose own MonitoringSchedule is due (governance/monitoring).
# Requests past their policy's request_expiry_days are closed hourly (counted in days, so an
# hour late at most).
CELERY_BEAT_SCHEDULE = {
    "scheduled-monitoring": {
        "task": "governance.tasks.run_scheduled_monitoring_task",
        "schedule": 15 * 60.0,
    },
    "expire-transition-requests": {
        "task": "governance.tasks.expire_transition_requests_task",
        "schedule": 60 * 60.0,
    },
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "stagegate@localhost")

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters in production")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}, "weasyprint.progress": {"level": "WARNING"}},
}

# django-axes warns when lockout is not keyed on the IP address. Stagegate locks the account
# (username) on purpose: Part 11 asks that attempts on an account be stopped whatever their
# source, and an IP key would lock out every user behind a shared proxy.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
