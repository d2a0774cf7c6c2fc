"""Mergeable KLL quantile sketch (Karnin, Lang, Liberty 2016) in Model Monitor's layout.

Why our own and not Apache DataSketches: Model Monitor (Deequ) writes its sketch as
``{"parameters": {"c": 0.64, "k": 2048.0}, "data": [[level 0 items], [level 1 items], ...]}``, an item on
level h standing for 2**h values; DataSketches' KLL serialises to a binary blob of its own layout and is
not in SageMaker's stock scikit-learn image. This sketch keeps exactly Model Monitor's layout, so a
baseline written by Model Monitor can be read, and a partial result of one instance is the same JSON a
statistics.json holds. It needs numpy only.

Compaction: a level holding more than its capacity ``max(2, ceil(k * c**(H-1-h)))`` is sorted and every
other item (random offset) moves up a level with twice the weight; an odd item stays. Each compaction
moves any rank by at most 2**h and is unbiased; KLL's analysis gives a normalized rank error of about
1.7/k for k=2048 (DataSketches measures 0.14 % at 99 % confidence). Chunks arrive sorted as a whole and
are halved down the levels in one cascade (one sort per chunk). The offsets come from a seeded
generator, so the same input in the same order gives the same sketch.
"""
from __future__ import annotations

import math

import numpy as np

K = 2048  # Model Monitor's sketch parameters
C = 0.64
MIN_CAPACITY = 2
# Normalized rank error we test against (tests/component/test_data_quality.py measures the sketch); a distance
# between two sketched CDFs is then within 2 * RANK_ERROR of the exact one.
RANK_ERROR = 0.005


class KLL:
    def __init__(self, k: int = K, c: float = C, seed: int = 0):
        self.k, self.c = int(k), float(c)
        self.levels: list[np.ndarray] = [np.empty(0)]
        self.n = 0  # total weight: the number of values summarised
        self._runs: list[bool] = [False]  # True: the level is a few sorted runs (timsort merges them in O(n))
        self._rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ building
    def update(self, values: np.ndarray) -> None:
        """Add a batch of finite floats."""
        if values.size == 0:
            return
        self.levels[0] = np.concatenate([self.levels[0], np.asarray(values, dtype=float)])
        self._runs[0] = False
        self.n += int(values.size)
        self._compress()

    def merge(self, other: "KLL") -> None:
        while len(self.levels) < len(other.levels):
            self.levels.append(np.empty(0))
            self._runs.append(True)
        for h, items in enumerate(other.levels):
            if items.size:
                self.levels[h] = np.concatenate([self.levels[h], items])
                self._runs[h] = False
        self.n += other.n
        self._compress()

    def _capacity(self, h: int) -> int:
        return max(MIN_CAPACITY, int(math.ceil(self.k * self.c ** (len(self.levels) - 1 - h))))

    def _compress(self) -> None:
        changed = True
        while changed:  # a new top level shrinks the capacities below it: repeat until all fit
            changed = False
            for h in range(len(self.levels)):
                items = self.levels[h]
                if items.size <= self._capacity(h):
                    continue
                items = np.sort(items, kind="stable" if self._runs[h] else "quicksort")
                odd = items.size % 2
                promoted = items[odd:][int(self._rng.integers(2))::2]  # sorted: every other item of a sorted run
                self.levels[h] = items[:odd]
                self._runs[h] = True
                if h + 1 == len(self.levels):
                    self.levels.append(np.empty(0))
                    self._runs.append(True)
                self.levels[h + 1] = np.concatenate([self.levels[h + 1], promoted])
                changed = True

    # ------------------------------------------------------------------ reading
    def points(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(sorted items, cumulative weights); the last cumulative weight is n."""
        return sketch_points_of_levels([lv.tolist() for lv in self.levels])

    def to_model_monitor(self) -> dict:
        return {"parameters": {"c": self.c, "k": float(self.k)},
                "data": [np.sort(items).tolist() for items in self.levels]}

    @classmethod
    def from_model_monitor(cls, doc: dict, seed: int = 0) -> "KLL":
        params = doc.get("parameters") or {}
        sketch = cls(int(params.get("k", K)), float(params.get("c", C)), seed)
        sketch.levels = [np.asarray(items, dtype=float) for items in doc.get("data") or [[]]] or [np.empty(0)]
        sketch._runs = [False] * len(sketch.levels)
        sketch.n = int(sum(items.size << h for h, items in enumerate(sketch.levels)))
        return sketch


def sketch_points_of_levels(data) -> tuple[np.ndarray, np.ndarray] | None:
    vals, weights = [], []
    for level, items in enumerate(data or []):
        if items:
            vals.extend(float(x) for x in items)
            weights.extend([float(1 << level)] * len(items))
    if not vals:
        return None
    v = np.asarray(vals)
    order = np.argsort(v, kind="stable")
    return v[order], np.cumsum(np.asarray(weights)[order])


def equal_width_buckets(points: tuple[np.ndarray, np.ndarray], lo: float, hi: float, buckets: int) -> list[dict]:
    """Model Monitor's buckets: counts of [edge_i, edge_i+1) (the last one closed) from the sketch."""
    vals, cum = points
    n = float(cum[-1])
    if lo == hi:
        return [{"lower_bound": lo, "upper_bound": hi, "count": n}]
    edges = np.linspace(lo, hi, buckets + 1)
    idx = np.searchsorted(vals, edges[1:-1], side="left")
    below = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)
    counts = np.diff(np.concatenate(([0.0], below, [n])))
    return [{"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
            for i in range(buckets)]
