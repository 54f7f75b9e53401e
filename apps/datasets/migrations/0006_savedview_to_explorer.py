"""Saved views move to the explorer app: only Django's state changes, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0005_sample_observed_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SavedView")],
            database_operations=[],
        ),
    ]
