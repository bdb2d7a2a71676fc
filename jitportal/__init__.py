"""jitportal: just-in-time access to routes behind Pomerium Zero."""

from .celery import app as celery_app

__all__ = ["celery_app"]
