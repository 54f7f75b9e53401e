"""The monitoring policy and drift checks, taken over from the quality app with their tables:
the state is created here, the database already has them."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('datasets', '0005_sample_observed_at'),
        ('projects', '0002_invitation'),
        ('quality', '0006_monitoring_moves_out'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='DriftCheck',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('window_start', models.DateTimeField()),
                        ('window_end', models.DateTimeField()),
                        ('n_production', models.PositiveIntegerField(help_text='Production samples of the window with an embedding.')),
                        ('n_train', models.PositiveIntegerField(default=0, help_text='Training samples compared with.')),
                        ('auc', models.FloatField(blank=True, null=True)),
                        ('p_value', models.FloatField(blank=True, null=True)),
                        ('share_out_of_coverage', models.FloatField(blank=True, null=True)),
                        ('max_cluster_shift', models.FloatField(blank=True, null=True)),
                        ('clusters', models.JSONField(blank=True, default=list, help_text='Clusters with the biggest share changes.')),
                        ('alert', models.BooleanField(default=False)),
                        ('reasons', models.JSONField(blank=True, default=list, help_text='Thresholds crossed: signal, value, threshold.')),
                        ('thresholds', models.JSONField(blank=True, default=dict, help_text='The policy checked with.')),
                        ('skipped', models.CharField(blank=True, help_text='Why it was not tested.', max_length=200)),
                        ('embedding_space', models.CharField(blank=True, max_length=80)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('dataset', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='drift_checks', to='datasets.dataset')),
                    ],
                    options={
                        'db_table': 'quality_driftcheck',
                        'ordering': ['dataset', '-window_start'],
                        'constraints': [models.UniqueConstraint(fields=('dataset', 'window_start'), name='one_drift_check_per_window')],
                    },
                ),
                migrations.CreateModel(
                    name='MonitoringPolicy',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('window_hours', models.PositiveSmallIntegerField(default=24, help_text='Length of a time window; windows start at UTC midnight for days.')),
                        ('p_value_threshold', models.FloatField(default=0.01, help_text="Alert when the two-sample test's p-value is below this.")),
                        ('coverage_threshold', models.FloatField(default=0.15, help_text='Alert when more of a window than this is out of coverage.')),
                        ('cluster_shift_threshold', models.FloatField(default=0.1, help_text="Alert when a cluster's share changes by more than this.")),
                        ('min_samples', models.PositiveIntegerField(default=30, help_text='Windows with fewer production samples are not tested.')),
                        ('embedding_space', models.CharField(blank=True, help_text='Embedding space to compare in; blank: the default.', max_length=80)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('project', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='monitoring', to='projects.project')),
                        ('updated_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'quality_monitoringpolicy',
                        'verbose_name_plural': 'monitoring policies',
                        'constraints': [models.CheckConstraint(condition=models.Q(('window_hours__gte', 1), ('window_hours__lte', 744)), name='window_hours_in_range'), models.CheckConstraint(condition=models.Q(('p_value_threshold__gt', 0), ('p_value_threshold__lt', 1)), name='p_value_threshold_in_range'), models.CheckConstraint(condition=models.Q(('coverage_threshold__gt', 0), ('coverage_threshold__lt', 1)), name='coverage_threshold_in_range'), models.CheckConstraint(condition=models.Q(('cluster_shift_threshold__gt', 0), ('cluster_shift_threshold__lt', 1)), name='cluster_shift_threshold_in_range'), models.CheckConstraint(condition=models.Q(('min_samples__gte', 10)), name='min_samples_at_least_10')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
