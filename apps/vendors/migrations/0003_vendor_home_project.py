"""Every vendor gets a home project: the project it was first linked to, which is the one it
was made in. Existing links stay as they are."""

import django.db.models.deletion
from django.db import migrations, models


def home_the_vendors(apps, schema_editor):
    Vendor = apps.get_model("vendors", "Vendor")
    Link = Vendor.projects.through
    for vendor in Vendor.objects.filter(home_project=None):
        first = Link.objects.filter(vendor_id=vendor.pk).order_by("pk").first()
        if first is not None:
            Vendor.objects.filter(pk=vendor.pk).update(home_project_id=first.project_id)


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0002_invitation"),
        ("vendors", "0002_batch_acceptance"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="vendor",
            options={"ordering": ["name", "pk"]},
        ),
        migrations.AddField(
            model_name="vendor",
            name="home_project",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="home_vendors",
                to="projects.project",
            ),
        ),
        migrations.AlterField(
            model_name="vendor",
            name="name",
            field=models.CharField(max_length=120),
        ),
        migrations.AddConstraint(
            model_name="vendor",
            constraint=models.UniqueConstraint(
                fields=("home_project", "name"), name="vendor_name_once_per_home"
            ),
        ),
        # Last: rows updated before an ALTER TABLE in one transaction leave pending FK triggers.
        migrations.RunPython(home_the_vendors, migrations.RunPython.noop),
    ]
