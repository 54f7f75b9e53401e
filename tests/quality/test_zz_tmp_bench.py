import time
from django.db import connection
from apps.datasets.selectors import samples_matching
from apps.quality.selectors import _stratified, map_scores
from tests.quality.test_zz_fill import fill


def test_bench(team):
    d = fill(team, 1_000_000)
    run = d.scoring_runs.first()
    s = samples_matching(d, query={}, run=run, extra_scores=map_scores()).filter(
        score_x__isnull=False, score_y__isnull=False
    )
    from django.db.models import Count

    cq = s.order_by().values("label").annotate(n=Count("pk")).order_by("label")
    t = time.perf_counter()
    counts = {r["label"]: r["n"] for r in cq}
    print("count", time.perf_counter() - t)
    print(cq.explain(analyze=True))
    q = (
        _stratified(s, counts, 100_000)
        .order_by("pk")
        .values_list(
            "pk", "score_x", "score_y", "label", "split", "score_suggested_label", "score_cluster"
        )
    )
    sql, params = q.query.sql_with_params()
    with connection.cursor() as c:
        c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        print("\n".join(r[0] for r in c.fetchall()))
    t = time.perf_counter()
    rows = list(q)
    print("rows", time.perf_counter() - t)
