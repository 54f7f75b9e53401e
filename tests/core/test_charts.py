"""The charts' geometry: linear scales (SVG's downward y included) and line paths."""

import pytest

from apps.core.charts import line_path, scale


def test_a_scale_maps_the_ends_of_its_domain_onto_the_ends_of_its_range():
    to = scale(10, 20, 100, 200)
    assert (to(10), to(15), to(20)) == (100, 150, 200)
    assert to(30) == 300  # beyond the domain, the same line


def test_a_value_axis_grows_upwards_on_the_page():
    bottom, top = 160, 20
    to_y = scale(0, 1, bottom, top)
    assert to_y(0) == bottom and to_y(1) == top
    assert to_y(0.25) > to_y(0.75)


def test_an_empty_domain_maps_everything_to_the_start_of_the_range():
    to = scale(5, 5, 40, 540)
    assert to(5) == 40


@pytest.mark.parametrize(
    ("points", "d"),
    [
        ([], ""),
        ([(1, 2)], "M1.0,2.0"),
        ([(0, 0), (10.04, 5.06), (20, 1.25)], "M0.0,0.0 L10.0,5.1 L20.0,1.2"),
    ],
)
def test_a_line_path_moves_to_the_first_point_and_draws_to_each_next(points, d):
    assert line_path(points) == d
