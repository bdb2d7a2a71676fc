"""Store each entry's canonical details text (what was hashed) beside the JSON value.

Existing rows are filled in from their details, which decode to exactly the value that was
hashed (``record`` round-trips details through JSON before hashing). The append-only
trigger is switched off for the fill only, inside this migration's transaction.
"""

import json

from django.db import migrations, models

BATCH = 2000
DISABLE = "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only"
ENABLE = "ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only"


def _canonical(value):
    # The same text as apps.audit.chain.dumps (a migration must not import app code).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fill(apps, schema_editor):
    event = apps.get_model("audit", "AuditEvent")
    connection = schema_editor.connection
    rows = event.objects.filter(details_text="").order_by("pk").values_list("pk", "details")
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(DISABLE)
        batch = []
        for pk, details in rows.iterator(chunk_size=BATCH):
            batch.append((_canonical(details), pk))
            if len(batch) >= BATCH:
                cursor.executemany(
                    "UPDATE audit_auditevent SET details_text = %s WHERE id = %s", batch
                )
                batch.clear()
        if batch:
            cursor.executemany("UPDATE audit_auditevent SET details_text = %s WHERE id = %s", batch)
        if postgres:
            cursor.execute(ENABLE)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_zero_contract_actions")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="details_text",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
    ]
