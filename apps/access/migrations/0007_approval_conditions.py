"""Each approval keeps the conditions its approver set (duration, level).

Before, the request kept one pair (``approved_duration_minutes``, ``approved_level``) that
every approver overwrote. For a request still pending, nobody can tell which approver set
it, so each of its approvals takes the pair: the conditions it carries now keep holding,
and a later approver can only make them stricter. Decided requests keep their history as
it was (the request's pair is what was granted).
"""

import django.db.models.deletion
from django.db import migrations, models


def conditions_of_pending_requests(apps, schema_editor):
    AccessRequest = apps.get_model("access", "AccessRequest")
    Approval = apps.get_model("access", "Approval")
    pending = AccessRequest.objects.filter(state="pending").exclude(
        approved_duration_minutes__isnull=True, approved_level__isnull=True
    )
    for req in pending.iterator():
        Approval.objects.filter(request=req).update(
            duration_minutes=req.approved_duration_minutes, level_id=req.approved_level_id
        )


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0006_requester_history_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="approval",
            name="duration_minutes",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="The shorter duration this approver set; empty: as asked.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="approval",
            name="level",
            field=models.ForeignKey(
                blank=True,
                help_text="The lower level this approver set; empty: as asked.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="access.accesslevel",
            ),
        ),
        migrations.RunPython(conditions_of_pending_requests, migrations.RunPython.noop),
    ]
