import time
from tests.quality.test_zz_fill import fill

def test_bench(team, web_as):
    client = web_as(team.user("owner"))
    for n in (100_000, 1_000_000):
        d = fill(team, n)
        for params in ("", "", "?color=mislabel_score&only=color"):
            t = time.perf_counter()
            r = client.get(f"/datasets/{d.pk}/map/points/{params}", HTTP_ACCEPT_ENCODING="gzip")
            print(n, params, r.status_code, len(r.content), "bytes gz", round(time.perf_counter() - t, 2), "s")
