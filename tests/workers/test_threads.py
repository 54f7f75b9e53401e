"""Each worker's BLAS/OpenMP pools get its share of the cores."""

import pytest

from workers.threads import pool_threads


@pytest.mark.parametrize(
    "cores,processes,expected",
    [(2, 1, 2), (2, 2, 1), (8, 3, 2), (8, 1, 8), (1, 4, 1), (2, 0, 2)],
)
def test_the_cores_are_shared_among_the_worker_processes(cores, processes, expected):
    assert pool_threads(cores, processes) == expected


def test_the_setting_wins():
    assert pool_threads(2, 2, override=4) == 4
    assert pool_threads(8, 1, override=1) == 1


def test_never_fewer_than_one_thread():
    assert pool_threads(1, 8) == 1
    assert pool_threads(0, 1) == 1
    assert pool_threads(4, 2, override=0) == 1
