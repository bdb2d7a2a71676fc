"""The Celery worker subprocess of ``tests.support.celery_worker``, under the path the Zero
integration tests import it from."""

from tests.support.celery_worker import CeleryWorker, database_url, purge_broker

__all__ = ["CeleryWorker", "database_url", "purge_broker"]
