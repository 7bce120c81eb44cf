"""Settings of the example shop: an ordinary Django project that adopted restate-pg.

The database comes from $DATABASE_URL (`python dev.py` starts an embedded PostgreSQL and sets it);
restate-pg derives its own connection from DATABASES, so there is one configuration.
"""

import os

from django.core.exceptions import ImproperlyConfigured
from psycopg.conninfo import conninfo_to_dict

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "for-development-only")
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "restate_pg.contrib.django",  # manage.py restate_worker
    "orders",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "shopsite.urls"
ASGI_APPLICATION = "shopsite.asgi.application"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _database(url: str) -> dict:
    params = conninfo_to_dict(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params.pop("dbname", ""),
        "USER": params.pop("user", ""),
        "PASSWORD": params.pop("password", ""),
        "HOST": params.pop("host", ""),
        "PORT": params.pop("port", ""),
        "OPTIONS": params,
    }


if not os.environ.get("DATABASE_URL"):
    raise ImproperlyConfigured("set DATABASE_URL to a PostgreSQL database, or run `python dev.py`")
DATABASES = {"default": _database(os.environ["DATABASE_URL"])}

# What restate-pg's workers run; its schema and database alias keep their defaults.
RESTATE_PG = {"APP": "orders.services:app"}
