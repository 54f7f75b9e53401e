"""Geometry of the server-drawn SVG charts (reports, the drift page): scales and line paths."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def scale(lo: float, hi: float, out_lo: float, out_hi: float) -> Callable[[float], float]:
    """The linear map taking `lo` to `out_lo` and `hi` to `out_hi`, beyond them too.

    SVG's y grows downwards: a value axis passes the bottom as `out_lo` and the top as `out_hi`.
    An empty domain (`lo == hi`) maps every value to `out_lo` rather than dividing by zero.
    """
    span = (hi - lo) or 1

    def to(value: float) -> float:
        return out_lo + (out_hi - out_lo) * ((value - lo) / span)

    return to


def line_path(points: Iterable[tuple[float, float]]) -> str:
    """The `d` of an SVG path through the points in order, to a tenth of a pixel."""
    return " ".join(f"{'L' if i else 'M'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
