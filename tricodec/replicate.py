"""Exact pixel replication: images enlarged by repeating every pixel ``fy`` times down and ``fx`` times
across (nearest-neighbour upscaling by an integer factor: thumbnails blown up, pixel art, resampled scans)
hold each sample ``fy * fx`` times.  A model that knows it codes the small image instead
(``fused_model``: the factors in SIDE).

    replicated by (fy, fx)  <=>  x[p, y, x] == x[p, (y // fy) * fy, (x // fx) * fx] for every sample
    small = x[:, ::fy, ::fx];   x = expand(small, fy, fx)[:, :H, :W]

(the last block of a row or column may be partial: H and W need not be multiples of the factors.)
"""
from __future__ import annotations

import numpy as np

MAX_FACTOR = 4


def _repeats(planes: np.ndarray, f: int, axis: int) -> bool:
    n = planes.shape[axis]
    if n < 2 or f > n:
        return False
    line = lambda i: np.take(planes, i, axis=axis)   # noqa: E731
    mid = (n // 2) // f * f
    if mid + 1 < n and not np.array_equal(line(mid), line(mid + 1)):
        return False     # a quick refusal: a block in the middle of the image does not repeat its first row
    # every row (column) that is not first in its block equals the one before it (views, no copies)
    cut = lambda start, stop: planes[(slice(None),) * axis + (slice(start, stop, f),)]   # noqa: E731
    return all(np.array_equal(cut(j, n), cut(j - 1, n - 1)) for j in range(1, f))


def _factor(planes: np.ndarray, axis: int) -> int:
    # a quick refusal first: every replication by f >= 2 repeats row (column) 0 in row (column) 1
    if planes.shape[axis] < 2 or not np.array_equal(np.take(planes, 0, axis=axis), np.take(planes, 1, axis=axis)):
        return 1
    for f in range(MAX_FACTOR, 1, -1):
        if _repeats(planes, f, axis):
            return f
    return 1


def replication(planes: np.ndarray) -> tuple[int, int]:
    """(fy, fx) in 1..MAX_FACTOR: the largest factors by which every plane of (P, H, W) ``planes``
    repeats its samples down and across (1: none)."""
    fy = _factor(planes, 1)
    fx = _factor(planes[:, ::fy], 2)
    return fy, fx


def expand(small, fy: int, fx: int, height: int, width: int):
    """The inverse on a numpy array or a torch tensor (P, h, w) -> (P, height, width)."""
    if fy == fx == 1:
        return small
    if isinstance(small, np.ndarray):
        return np.ascontiguousarray(np.repeat(np.repeat(small, fy, axis=1), fx, axis=2)[:, :height, :width])
    return small.repeat_interleave(fy, dim=1).repeat_interleave(fx, dim=2)[:, :height, :width].contiguous()
