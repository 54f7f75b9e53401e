"""Saved views, taken over from the datasets app with their table `datasets_savedview`."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("datasets", "0006_savedview_to_explorer"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SavedView",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=120)),
                        (
                            "query",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                help_text="A sample query (JSON predicate).",
                            ),
                        ),
                        ("ordering", models.CharField(blank=True, default="", max_length=40)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "dataset",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="saved_views",
                                to="datasets.dataset",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "datasets_savedview",
                        "ordering": ["name", "id"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("dataset", "name"), name="unique_view_name"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
