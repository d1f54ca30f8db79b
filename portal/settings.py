"""Settings for the clinic lab-kit portal.

Every setting is read here, once, from the environment (or an optional `.env`
file at the repository root), with a default that is safe for local use. The
README's "Configuration" table lists them all; `.env.example` is the template.

Docs: https://docs.djangoproject.com/en/5.2/ref/settings/ and
https://django-environ.readthedocs.io/
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A `.env` file never overrides variables already set in the environment.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))

# --- Core -------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-local-development-only-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY)
if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a random value of at least 50 characters "
        "when DJANGO_DEBUG is off (python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Shown in page titles and in emails to patients.
CLINIC_NAME = env.str("CLINIC_NAME", default="Demo Clinic")

# The admin lives under a path of its own so it can be moved off the default.
ADMIN_URL = env.str("DJANGO_ADMIN_URL", default="admin/").strip("/") + "/"

INSTALLED_APPS = [
    "portal.accounts.apps.PortalAdminConfig",  # django.contrib.admin, site requiring 2FA
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_filters",
    "bootstrap",  # django-bootstrap-static: Bootstrap's dist files, served locally
    "axes",  # django-axes: login lockout after repeated failures
    "django_otp",  # django-otp: two-factor authentication (TOTP)
    "django_otp.plugins.otp_totp",
    "csp",  # django-csp: Content-Security-Policy header
    "auditlog",  # django-auditlog: create/change/delete trail of patient records
    "portal.core",
    "portal.accounts",
    "portal.upstream",
    "portal.patients",
    "portal.orders",
    "portal.kits",
    "portal.results",
    "portal.notifications",
    "portal.bulk",  # bulk kit registration from CSV
    "portal.bench",  # `manage.py bench` (make bench); no models
    "portal.audit",  # the audit trail: who changed and who read patient data
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # The portal's safeguards for signed-in people: see portal/accounts/middleware.py.
    "portal.accounts.middleware.NoStoreForAuthenticatedMiddleware",
    "portal.accounts.middleware.SessionTimeoutMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "portal.accounts.middleware.TwoFactorRequiredMiddleware",
    # The audit trail's actor: the person signed in (django-auditlog's middleware, extended).
    "portal.audit.middleware.AuditActorMiddleware",
    # Last, as django-axes asks: turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

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
                "portal.core.context_processors.portal",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
# SQLite under var/ by default; PostgreSQL in production via DATABASE_URL.

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server, the worker and beat read while one writes;
    # IMMEDIATE makes writers queue on the lock instead of failing mid-transaction.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # Planner settings sent when each connection opens (libpq `options`). The portal's
    # queries are short index lookups: JIT compilation cost 100 ms on a 0.4 s export, and
    # the default random_page_cost (4, for spinning disks) chose a scan of every kit over
    # 10,000 index lookups (3x slower on SSD storage). Empty it behind a pooler that
    # refuses startup options, and set these on the server (ALTER DATABASE ... SET).
    # cursor_tuple_fraction: the server-side cursors (`.iterator()`) are the exports and
    # batch jobs, which read every row; planned for the first 10% (the default), the
    # CSV export of one day took 220 ms instead of 60 ms.
    pg_options = env.str(
        "DATABASE_PG_OPTIONS", default="-c jit=off -c random_page_cost=1.1 -c cursor_tuple_fraction=1"
    ).strip()
    if pg_options:
        DATABASES["default"].setdefault("OPTIONS", {})
        existing = DATABASES["default"]["OPTIONS"].get("options", "")
        DATABASES["default"]["OPTIONS"]["options"] = f"{existing} {pg_options}".strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------
# Shared by every web and worker process (the upstream token lives here), so the
# default is the database cache, which needs no daemon; Redis in production.

CACHES = {"default": env.cache("CACHE_URL", default="dbcache://portal_cache")}

# --- Auth -------------------------------------------------------------------

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- Internationalisation -----------------------------------------------------

LANGUAGE_CODE = "en-us"
# The clinic's time zone: every date a staff member sees is shown in it.
TIME_ZONE = env.str("TIME_ZONE", default="America/Chicago")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=VAR_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed names and compression in production; plain files while developing.
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_MANIFEST_STRICT = False

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Email --------------------------------------------------------------------
# Files under var/mail/ by default so a person can read what was sent; SMTP in
# production (smtp+tls://user:password@host:587).

EMAIL_URL = env.str("EMAIL_URL", default="filemail://var/mail")
if EMAIL_URL.startswith("filemail://"):
    # django-environ drops the leading "/" of an absolute path: read it ourselves.
    # filemail:///abs/path is absolute; filemail://var/mail is relative to the repository.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str((BASE_DIR / EMAIL_URL.removeprefix("filemail://")).resolve())
else:
    vars().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Clinic Lab Portal <no-reply@clinic.example>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# --- Security -----------------------------------------------------------------
# Django's deployment checklist: https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/

SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    # Only when a proxy we control sets this header; see the deployment docs.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# django-axes first: it refuses a locked-out attempt before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Automatic logoff (HIPAA 164.312(a)(2)(iii)), by
# portal.accounts.middleware.SessionTimeoutMiddleware: after this many seconds
# without a request (sliding)...
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", default=15 * 60)
# ...and, whatever the activity, this many seconds after sign-in.
SESSION_ABSOLUTE_TIMEOUT = env.int("SESSION_ABSOLUTE_TIMEOUT", default=12 * 3600)
if not 0 < SESSION_IDLE_TIMEOUT <= SESSION_ABSOLUTE_TIMEOUT:
    raise ImproperlyConfigured("SESSION_IDLE_TIMEOUT must be positive and at most SESSION_ABSOLUTE_TIMEOUT.")
# The stored session expires at the cap as well, and the cookie with the browser.
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Login lockout (django-axes, https://django-axes.readthedocs.io/): AXES_FAILURE_LIMIT
# failed sign-ins for one username from one address lock that pair out for
# AXES_COOLOFF_MINUTES (0: until an admin resets it, in admin under "Access
# attempts" or with `manage.py axes_reset_username USERNAME`). Keyed on the pair, so
# an attacker elsewhere cannot lock a person out, nor anyone lock out a whole clinic.
AXES_ENABLED = True
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = "portal.accounts.lockout.cool_off"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "portal.accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "portal.accounts.lockout.client_ip_address"
# Reverse proxies in front of the portal that append to X-Forwarded-For (0: none,
# the socket's address is the client's). Set it exactly: too high lets clients
# choose their own address.
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)

# Two-factor authentication (django-otp, TOTP; https://django-otp-official.readthedocs.io/):
# always for admins, and for clinic staff when this is on.
REQUIRE_2FA_FOR_STAFF = env.bool("REQUIRE_2FA_FOR_STAFF", default=not DEBUG)
OTP_TOTP_ISSUER = f"{CLINIC_NAME} lab-kit portal"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Content-Security-Policy (django-csp 4, https://django-csp.readthedocs.io/): only
# our own scripts, styles and images (plus data: images, which Bootstrap's CSS uses
# for its icons); no plugins, no <base>, no framing, forms post only to us.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Celery -------------------------------------------------------------------
# The default broker keeps messages as files under var/celery/, so a fresh
# machine needs no Redis; production sets CELERY_BROKER_URL=redis://... or amqp://...

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery" / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=3.0)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celery" / "beat-schedule")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# Tasks are acknowledged after they ran, and handed back if the worker dies, so a
# killed worker loses nothing; every task is written to be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A web request that enqueues while the broker is down gives up fast; the record
# is saved and the periodic sweep sends it later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
if CELERY_BROKER_URL.startswith(("redis", "rediss")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 3, "socket_timeout": 10}

# --- The lab partner's API (see ../shared/upstream/NOTES.md) -----------------

EVERLYWELL_API_URL = env.str("EVERLYWELL_API_URL", default="https://secure.everlywell.com/aapi").rstrip("/")
EVERLYWELL_AUTH_URL = env.str("EVERLYWELL_AUTH_URL", default="https://auth.everlywell.com/api").rstrip("/")
EVERLYWELL_CLIENT_ID = env.str("EVERLYWELL_CLIENT_ID", default="")
EVERLYWELL_CLIENT_SECRET = env.str("EVERLYWELL_CLIENT_SECRET", default="")
# Used when the token is not a JWT with an `exp` claim (NOTES.md point 2).
EVERLYWELL_TOKEN_LIFETIME = env.int("EVERLYWELL_TOKEN_LIFETIME", default=3600)
# Refresh this many seconds before the token expires.
EVERLYWELL_TOKEN_REFRESH_MARGIN = env.int("EVERLYWELL_TOKEN_REFRESH_MARGIN", default=60)
# `ms` (as the reference's example) or `s` (as its table); NOTES.md point 8.
EVERLYWELL_DOB_UNIT = env.str("EVERLYWELL_DOB_UNIT", default="ms")
# Send ZIP codes as strings (keeps leading zeros) instead of ints; NOTES.md point 10.
EVERLYWELL_ZIP_AS_STRING = env.bool("EVERLYWELL_ZIP_AS_STRING", default=False)
EVERLYWELL_CONNECT_TIMEOUT = env.float("EVERLYWELL_CONNECT_TIMEOUT", default=3.05)
EVERLYWELL_READ_TIMEOUT = env.float("EVERLYWELL_READ_TIMEOUT", default=15.0)
# Retries of a call that surely did not arrive / is safe to repeat, and their budget.
EVERLYWELL_MAX_RETRIES = env.int("EVERLYWELL_MAX_RETRIES", default=3)
EVERLYWELL_RETRY_BUDGET = env.float("EVERLYWELL_RETRY_BUDGET", default=30.0)
EVERLYWELL_RETRY_AFTER_CAP = env.float("EVERLYWELL_RETRY_AFTER_CAP", default=30.0)
# Calls in flight at once from one worker process: bounded so the partner is never flooded.
EVERLYWELL_CONCURRENCY = env.int("EVERLYWELL_CONCURRENCY", default=8)
if not 1 <= EVERLYWELL_CONCURRENCY <= 32:
    raise ImproperlyConfigured("EVERLYWELL_CONCURRENCY must be between 1 and 32.")

# --- Portal behaviour ---------------------------------------------------------

# Youngest patient an at-home kit may be registered to (0 turns the check off).
PATIENT_MIN_AGE = env.int("PATIENT_MIN_AGE", default=18)
# Seconds between two polls of one pending result at first, and the cap the
# back-off grows to for results that stay pending (NOTES.md point 14).
RESULT_POLL_INTERVAL = env.int("RESULT_POLL_INTERVAL", default=300)
RESULT_POLL_MAX_INTERVAL = env.int("RESULT_POLL_MAX_INTERVAL", default=6 * 3600)
ORDER_POLL_INTERVAL = env.int("ORDER_POLL_INTERVAL", default=900)
# Results pending longer than this many days since registration are "overdue".
RESULT_OVERDUE_AFTER = env.int("RESULT_OVERDUE_AFTER", default=10)
# Rows one poll run claims at most, and how long a claim lasts before another
# poller may take it over (a worker killed mid-batch loses nothing).
POLL_BATCH_SIZE = env.int("POLL_BATCH_SIZE", default=200)
POLL_CLAIM_SECONDS = env.int("POLL_CLAIM_SECONDS", default=300)
# A submission still "being sent" after this many seconds had its worker die:
# its outcome is unknown, so it is marked for review, never resent blindly.
SUBMISSION_STALE_AFTER = env.int("SUBMISSION_STALE_AFTER", default=600)
# The link patients follow to see their results, and the clinic's contact line.
RESULTS_VIEW_URL = env.str("RESULTS_VIEW_URL", default="https://results.clinic.example/")
CLINIC_CONTACT = env.str("CLINIC_CONTACT", default="Call us at (555) 010-0000, Monday to Friday, 9am-5pm.")
CLINIC_REPLY_TO = env.str("CLINIC_REPLY_TO", default="")
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=5)

# Bulk kit registration from CSV: the largest file (bytes) and the most rows one
# upload may have, and how many registrations one background task sends.
BULK_MAX_BYTES = env.int("BULK_MAX_BYTES", default=2 * 1024 * 1024)
BULK_MAX_ROWS = env.int("BULK_MAX_ROWS", default=5000)
BULK_BATCH_SIZE = env.int("BULK_BATCH_SIZE", default=50)
# The portal's own address, for links in emails to staff (the daily digest).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Who gets the daily staff digest (comma-separated emails); empty: the active users
# of the "Clinic staff" group. It is sent once a day, at the first check (hourly)
# at or after STAFF_DIGEST_HOUR o'clock in TIME_ZONE.
STAFF_DIGEST_RECIPIENTS = env.list("STAFF_DIGEST_RECIPIENTS", default=[])
STAFF_DIGEST_HOUR = env.int("STAFF_DIGEST_HOUR", default=7)

# Periodic work (Celery beat). Intervals in seconds.
CELERY_BEAT_SCHEDULE = {
    "poll-results": {"task": "portal.results.tasks.results_poll_task", "schedule": float(RESULT_POLL_INTERVAL)},
    "poll-orders": {"task": "portal.orders.tasks.orders_poll_task", "schedule": float(ORDER_POLL_INTERVAL)},
    "sweep-submissions": {"task": "portal.core.tasks.sweep_task", "schedule": 60.0},
    # Daily: checked hourly, sent once a day at or after STAFF_DIGEST_HOUR (see portal/core/digest.py).
    "staff-digest": {"task": "portal.core.tasks.staff_digest_task", "schedule": 3600.0},
    # The navigation bar's counts, so no page computes them (portal/core/digest.py).
    "staff-alert-badges": {"task": "portal.core.tasks.staff_alert_badges_task", "schedule": 60.0},
}

# --- Logging ------------------------------------------------------------------
# Log lines carry ids, never patient data (names, emails, dates of birth, phones,
# addresses) nor request or response bodies.

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django logs the full URL of 4xx/5xx requests; URLs never carry PHI here.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}

# --- Transport security -------------------------------------------------------
# Patient data goes to the partner over TLS only: with DEBUG off the portal refuses
# to start with a non-https partner URL. EVERLYWELL_ALLOW_INSECURE_URLS is for tests
# and the local sandbox only (`make run` sets DJANGO_DEBUG=True and needs no flag).

EVERLYWELL_ALLOW_INSECURE_URLS = env.bool("EVERLYWELL_ALLOW_INSECURE_URLS", default=False)
if not DEBUG and not EVERLYWELL_ALLOW_INSECURE_URLS:
    for _name, _url in (
        ("EVERLYWELL_API_URL", EVERLYWELL_API_URL),
        ("EVERLYWELL_AUTH_URL", EVERLYWELL_AUTH_URL),
    ):
        if not _url.lower().startswith("https://"):
            raise ImproperlyConfigured(f"{_name} must be an https:// URL when DJANGO_DEBUG is off.")
