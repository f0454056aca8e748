"""Kinovi Studio settings: every knob comes from the environment (see .env.example)."""

import base64
import hashlib
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from kinovi_site.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for development; real deployments set the environment.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")


def env_bool(name: str, default: bool) -> bool:
    """A boolean that refuses anything but a clear yes or no, naming the variable."""
    raw = env.str(name, default="")
    if raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.str(name, default="")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}.")
    return value


def env_float(name: str, default: float) -> float:
    raw = env.str(name, default="")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be positive.")
    return value


DEBUG = env_bool("DEBUG", True)

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default="") or _DEV_SECRET_KEY
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off: the development default is public."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
if urlsplit(SITE_URL).scheme not in {"http", "https"} or not urlsplit(SITE_URL).hostname:
    raise ImproperlyConfigured(f"SITE_URL must be an http(s) URL, not {SITE_URL!r}.")


def _is_public_host(host: str) -> bool:
    if host in {"localhost", "testserver"} or host.endswith(".local"):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True  # a DNS name: assume the deployment made it reachable


KINOVI_SANDBOX = env_bool("KINOVI_SANDBOX", DEBUG)
KINOVI_BASE_URL = env.str(
    "KINOVI_BASE_URL",
    default=f"{SITE_URL}/sandbox/api/v1" if KINOVI_SANDBOX else "https://kinovi.ai/api/v1",
).rstrip("/")

# Callback URLs are only worth sending when Kinovi can reach SITE_URL; otherwise polling alone
# carries the lifecycle. "auto" decides from SITE_URL's host, and says yes to the built-in
# sandbox, which is this site itself (so `make run` shows each change as it happens).
_callbacks = env.str("KINOVI_CALLBACKS", default="auto").strip().lower()
if _callbacks not in {"auto", "on", "off"}:
    raise ImproperlyConfigured(f"KINOVI_CALLBACKS must be auto, on or off, not {_callbacks!r}.")
KINOVI_CALLBACKS = (
    _is_public_host(urlsplit(SITE_URL).hostname or "")
    or (KINOVI_SANDBOX and KINOVI_BASE_URL.startswith(f"{SITE_URL}/sandbox/"))
    if _callbacks == "auto"
    else _callbacks == "on"
)
KINOVI_CONNECT_TIMEOUT = env_float("KINOVI_CONNECT_TIMEOUT", 5.0)
KINOVI_READ_TIMEOUT = env_float("KINOVI_READ_TIMEOUT", 30.0)
# Seconds a sandbox task spends waiting and generating; short in tests, about a minute for demos.
KINOVI_SANDBOX_WAIT_SECONDS = env_float("KINOVI_SANDBOX_WAIT_SECONDS", 10.0)
KINOVI_SANDBOX_GENERATE_SECONDS = env_float("KINOVI_SANDBOX_GENERATE_SECONDS", 50.0)
# Which of the vendor's two published request forms the sandbox reads: "docs" (its reference
# pages: `urls`, string duration) or "models" (its model README: imageUrls/videoUrls/audioUrls,
# integer duration, native 4k). Keys of the other form are ignored, as the vendor would.
KINOVI_SANDBOX_DIALECT = env.str("KINOVI_SANDBOX_DIALECT", default="docs").strip().lower()
if KINOVI_SANDBOX_DIALECT not in {"docs", "models"}:
    raise ImproperlyConfigured(
        f"KINOVI_SANDBOX_DIALECT must be docs or models, not {KINOVI_SANDBOX_DIALECT!r}."
    )
# Which of the vendor's two published request forms createTask speaks (kinovi/schema.py WIRE):
# "docs" (its reference pages: `urls`, string duration, upscaleResolution) or "models" (its
# model README: imageUrls/videoUrls/audioUrls, integer duration, native 4K).
KINOVI_DIALECT = env.str("KINOVI_DIALECT", default="docs").strip().lower()
if KINOVI_DIALECT not in {"docs", "models"}:
    raise ImproperlyConfigured(f"KINOVI_DIALECT must be docs or models, not {KINOVI_DIALECT!r}.")
# How long a signed material link (materials/links.py) works: Kinovi fetches a task's files
# when generating starts, which can be long after createTask if the task waits in its queue.
MATERIAL_LINK_SECONDS = env_int("MATERIAL_LINK_SECONDS", 24 * 3600, minimum=60)
# "site": signed links on SITE_URL served by the studio (with Range); "storage": the default
# storage's own time-limited URL (a presigned GET with django-storages' S3Storage).
MATERIAL_LINKS = env.str("MATERIAL_LINKS", default="site").strip().lower()
if MATERIAL_LINKS not in {"site", "storage"}:
    raise ImproperlyConfigured(f"MATERIAL_LINKS must be site or storage, not {MATERIAL_LINKS!r}.")
# Multiplies every polling interval and the stall window (tests compress a minute into seconds).
KINOVI_POLL_TIME_SCALE = env_float("KINOVI_POLL_TIME_SCALE", 1.0)
# How long one ticker job loops (claiming due polls and submissions every half second) before
# handing over to a fresh job; django-q2's timeout (90 s) must stay above it.
KINOVI_TICKER_SECONDS = env_float("KINOVI_TICKER_SECONDS", 55.0)


def _fernet_keys() -> list[str]:
    keys = env.list("FIELD_ENCRYPTION_KEYS", default=[])
    keys = [k.strip() for k in keys if k.strip()]
    if not keys:
        if not DEBUG:
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set when DEBUG is off.")
        # Derived from the dev SECRET_KEY so local data survives restarts; never for production.
        digest = hashlib.sha256(f"field-encryption:{SECRET_KEY}".encode()).digest()
        return [base64.urlsafe_b64encode(digest).decode()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key number {position} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes)."
            ) from None
    return keys


FIELD_ENCRYPTION_KEYS = _fernet_keys()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "axes",
    "csp",
    "accounts",
    "generations",
    "materials",
    "sandbox",
    "api",
]

MIDDLEWARE = [
    # First: the request line must time everything, and /healthz answers before host checks.
    "kinovi_site.middleware.RequestLogMiddleware",
    "kinovi_site.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "kinovi_site.urls"
WSGI_APPLICATION = "kinovi_site.wsgi.application"

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
                "accounts.context_processors.workspace",
                "generations.context_processors.usage",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the cluster writes; IMMEDIATE takes the write lock
    # at BEGIN so two writers queue instead of failing with "database is locked" mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env_int("CONN_MAX_AGE", 60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: lock an (e-mail, address) pair after repeated failures; lockouts expire.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
# Only the socket address counts: X-Forwarded-For is trivially spoofed unless a trusted proxy
# sets it, which a deployment declares with AXES_IPWARE_PROXY_COUNT.
AXES_IPWARE_PROXY_COUNT = env_int("AXES_IPWARE_PROXY_COUNT", 0)
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Kinovi Studio <studio@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
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

REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="kinovi"),
    # Three: the ticker loop keeps one worker busy, two are left for submissions and polls.
    "workers": env_int("Q_WORKERS", 3, minimum=1),
    "timeout": 90,
    # Retry must exceed timeout, or a slow task is handed to a second worker while it runs.
    "retry": 600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    # Successful results are bookkeeping only (jobs record outcomes in our tables). A positive
    # limit makes django-q2 lock and read every kept success row after EACH job to prune one,
    # serializing the workers (bench/job_results.py); 0 keeps them unpruned and the sweeper
    # deletes old ones in batches (generations/tasks.py, prune_job_results).
    "save_limit": env_int("Q_SAVE_LIMIT", 0),
    "label": "Background jobs",
    "poll": 0.5,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# The studio's own API (api/): requests per token and minute, counted across every web
# process: in Redis (the "api" cache) when REDIS_URL is set, in the database otherwise.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 120, minimum=1)
API_IDEMPOTENCY_HOURS = env_int("API_IDEMPOTENCY_HOURS", 24, minimum=1)
# Outbound webhooks (callBackUrl): the SSRF guard refuses private and loopback targets unless
# this is on (a test rig, a receiver on the same private network); retries on Standard
# Webhooks' schedule, about a day in all.
API_WEBHOOK_ALLOW_PRIVATE = env_bool("API_WEBHOOK_ALLOW_PRIVATE", False)
API_WEBHOOK_RETRY_SECONDS = [
    float(s)
    for s in env.list(
        "API_WEBHOOK_RETRY_SECONDS", default=[5, 300, 1800, 7200, 18000, 36000, 36000]
    )
]
API_WEBHOOK_CONNECT_TIMEOUT = float(env.str("API_WEBHOOK_CONNECT_TIMEOUT", default="5"))
API_WEBHOOK_READ_TIMEOUT = float(env.str("API_WEBHOOK_READ_TIMEOUT", default="10"))
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    CACHES["api"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "kinovi-api",
    }

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Load balancers probe /healthz over plain HTTP (it is also answered before this redirect).
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# Content security policy (django-csp): no inline script or style anywhere, the admin included.
# Videos and posters come from Kinovi's CDN with the real API, so media and images may load
# from any https origin there; with the sandbox they come from the sandbox's own origin.
CSP_MEDIA_ORIGINS = env.list(
    "CSP_MEDIA_ORIGINS", default=[_origin(KINOVI_BASE_URL)] if KINOVI_SANDBOX else ["https:"]
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *CSP_MEDIA_ORIGINS],
        "media-src": ["'self'", "blob:", *CSP_MEDIA_ORIGINS],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

INVITATION_DAYS = env_int("INVITATION_DAYS", 7, minimum=1)

# Error reports (mail to ADMINS, the debug page) mask keys in POST data and frame variables.
DEFAULT_EXCEPTION_REPORTER_FILTER = "kinovi_site.reporting.SecretMaskingReporterFilter"

# Structured logs (kinovi_site/logging.py): JSON lines by default in production, masked always.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))

# /healthz reports the cluster unhealthy when its newest sign of life is older than this.
HEALTHZ_MAX_HEARTBEAT_AGE = env_int("HEALTHZ_MAX_HEARTBEAT_AGE", 180, minimum=1)
