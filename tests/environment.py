"""Loaded by pytest before Django (``-p tests.environment`` in pyproject.toml).

Tests run the one settings module in development mode unless the caller says otherwise;
DATABASE_URL and CELERY_BROKER_URL come from the environment (CI points them at
PostgreSQL and Redis).
"""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("LOG_FORMAT", "text")
os.environ.setdefault("ZERO_SYNC_ENABLED", "false")
