"""The monitoring policy and drift checks now belong to the monitoring app; their tables stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("quality", "0005_drift_monitoring"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="DriftCheck"),
                migrations.DeleteModel(name="MonitoringPolicy"),
            ],
            database_operations=[],
        ),
    ]
