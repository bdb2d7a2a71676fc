"""The Celery app and its beat schedule.

The schedule lives here, in code, so every deployment runs the same periodic work.
Every periodic task is idempotent: running one twice, or two beats at once, does no harm.
"""

import os

from celery import Celery

from apps.kit.startup import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jitportal.settings")
load_settings_or_exit()

app = Celery("jitportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Start scheduled grants, end expired ones, expire stale requests.
    "access-tick": {"task": "access.tick", "schedule": 30.0},
    # Expiry and waiting-request reminders; re-enqueue notifications the broker lost.
    "notifications-tick": {"task": "notifications.tick", "schedule": 30.0},
    # Retry what Zero has not confirmed (revocations, expiries, pending changesets) and
    # repair what someone else changed since the last tick (one activity-log read a cluster).
    "zero-tick": {"task": "zero.tick", "schedule": 30.0},
    # Compare every managed policy with Zero and repair drift.
    "zero-reconcile": {"task": "zero.reconcile_all", "schedule": 300.0},
    # The audit stream's fallback: destinations behind whose nudge or retry was lost.
    "audit-stream-tick": {"task": "audit.stream_tick", "schedule": 15.0},
    # Recurring access reviews; reminders before and after a review's due date.
    "reviews-tick": {"task": "reviews.tick", "schedule": 300.0},
}
