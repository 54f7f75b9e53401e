from django.db import connection
from apps.datasets.models import Dataset
from apps.quality.models import RunStatus, ScoringRun


def fill(team, n):
    d = Dataset.objects.create(project=team.project, name=f"b{n}", labels=["a", "b", "c", "d"])
    run = ScoringRun.objects.create(dataset=d, version=1, status=RunStatus.DONE)
    with connection.cursor() as c:
        c.execute(
            """INSERT INTO datasets_sample (dataset_id, external_id, split, label, first_label, added_in, text, image, metadata, active, created_at)
          SELECT %s, 's'||g, 'train', (ARRAY['a','b','c','d'])[1 + g %% 4], NULL, 1, 'some text '||g, '', '{}', true, now() FROM generate_series(1, %s) g""",
            [d.pk, n],
        )
        c.execute(
            """INSERT INTO quality_samplescore (run_id, sample_id, likely_mislabeled, flags, reasons, x, y, cluster, suggested_label, mislabel_score)
          SELECT %s, id, false, '{}', '[]', random()*20-5, random()*15, (id %% 12)::int, 'a', random() FROM datasets_sample WHERE dataset_id=%s""",
            [run.pk, d.pk],
        )
        c.execute("ANALYZE datasets_sample; ANALYZE quality_samplescore")
    return d
