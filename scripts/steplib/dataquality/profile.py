"""Column profiles: mergeable statistics of a column, updated chunk by chunk.

A profile holds only what merges exactly or within the sketch error, never the rows:
  numeric  counts (present, missing, not a number, with a fraction, negative), min, max, per-chunk
           (count, sum, sum of squared deviations) and a KLL sketch;
  string   present/missing counts and the count of every value (up to MAX_TRACKED_VALUES distinct
           values; beyond that the rarest are dropped and their total kept) plus a k-minimum-values
           sketch of the distinct values.
Per-chunk moments are combined in (file, chunk) order at the end, so a sharded run merged gives
bit-for-bit the statistics of one pass over the same files. ``to_dict``/``from_dict`` give the JSON
partial result one instance of a sharded job writes.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .kll import KLL, equal_width_buckets

NUMERIC_TYPES = ("Integral", "Fractional")
NUM_BUCKETS = 10  # Model Monitor materialises distributions in 10 buckets
MAX_CATEGORICAL_BUCKETS = 1000
MAX_TRACKED_VALUES = 100_000  # exact value counts up to this many distinct values per column
KMV_SIZE = 4096  # distinct-count sketch: relative error about 1/sqrt(KMV_SIZE) = 1.6 %
MAX_EXAMPLES = 3


def to_numeric(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float array with NaN where not a finite number, mask non-null, mask numeric)."""
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(str)
    if pd.api.types.is_numeric_dtype(series):
        vals = series.to_numpy(dtype=float, na_value=np.nan)
        present = ~np.isnan(vals)
    else:
        present = series.notna().to_numpy()
        vals = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    vals = np.where(np.isfinite(vals), vals, np.nan)  # inf is not a usable number
    return vals, present, ~np.isnan(vals)


class Examples:
    """Up to MAX_EXAMPLES offending values with where they are, and how many there were."""

    def __init__(self):
        self.count, self.items = 0, []

    def add(self, chunk, series: pd.Series, positions: np.ndarray) -> None:
        """``positions``: the chunk rows (0-based) of the offending values."""
        if not positions.size:
            return
        self.count += int(positions.size)
        for i in positions[:MAX_EXAMPLES - len(self.items)]:
            self.items.append(f"{series.iloc[int(i)]!r} ({chunk.where(int(i))})")

    def merge(self, other: "Examples") -> None:
        self.count += other.count
        self.items = (self.items + other.items)[:MAX_EXAMPLES]

    def text(self) -> str:
        return ", ".join(self.items)

    def to_dict(self) -> dict:
        return {"count": self.count, "items": self.items}

    @classmethod
    def from_dict(cls, doc: dict) -> "Examples":
        out = cls()
        out.count, out.items = int(doc["count"]), list(doc["items"])
        return out


class NumericProfile:
    kind = "numeric"

    def __init__(self, seed: int = 0):
        self.rows = self.present = 0
        self.not_numeric, self.fractional = Examples(), Examples()
        self.negative = 0
        self.min, self.max = math.inf, -math.inf
        self.moments: list[list] = []  # [file key, chunk index, count, sum, sum of squared deviations]
        self.sketch = KLL(seed=seed)

    def update(self, chunk, series: pd.Series) -> None:
        vals, present, numeric = to_numeric(series)
        self.rows += len(series)
        self.present += int(present.sum())
        self.not_numeric.add(chunk, series, np.flatnonzero(present & ~numeric))
        v = vals[numeric]
        if v.size == 0:
            return
        fraction = v != np.floor(v)
        if fraction.any():
            self.fractional.add(chunk, series, np.flatnonzero(numeric)[fraction])
        self.negative += int((v < 0).sum())
        self.min, self.max = min(self.min, float(v.min())), max(self.max, float(v.max()))
        total = float(v.sum())
        self.moments.append([chunk.key, chunk.index, int(v.size), total, float(np.sum((v - total / v.size) ** 2))])
        self.sketch.update(v)

    def merge(self, other: "NumericProfile") -> None:
        self.rows += other.rows
        self.present += other.present
        self.not_numeric.merge(other.not_numeric)
        self.fractional.merge(other.fractional)
        self.negative += other.negative
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self.moments += other.moments
        self.sketch.merge(other.sketch)

    @property
    def count(self) -> int:
        """Number of numeric values (present and parseable)."""
        return sum(m[2] for m in self.moments)

    def mean_std(self) -> tuple[float, float, float]:
        """(sum, mean, population std) from the per-chunk moments in a fixed order (Chan et al.)."""
        parts = sorted(self.moments, key=lambda m: (m[0], m[1]))
        n = sum(m[2] for m in parts)
        total = math.fsum(m[3] for m in parts)
        mean = total / n
        m2 = math.fsum([m[4] for m in parts] + [m[2] * (m[3] / m[2] - mean) ** 2 for m in parts])
        return total, mean, math.sqrt(max(m2, 0.0) / n)

    def statistics(self) -> dict:
        stats = {"common": {"num_present": self.present, "num_missing": self.rows - self.present}}
        if not self.moments:
            return stats
        total, mean, std = self.mean_std()
        points = self.sketch.points()
        stats.update({
            "mean": mean, "sum": total, "std_dev": std, "min": self.min, "max": self.max,
            "distribution": {"kll": {"buckets": equal_width_buckets(points, self.min, self.max, NUM_BUCKETS),
                                     "sketch": self.sketch.to_model_monitor()}},
        })
        return stats

    def inferred_type(self) -> str:
        """Type of the parseable values (text is reported by the data type check, not here)."""
        if not self.moments:
            return "Unknown"
        return "Integral" if self.fractional.count == 0 else "Fractional"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "rows": self.rows, "present": self.present,
                "not_numeric": self.not_numeric.to_dict(), "fractional": self.fractional.to_dict(),
                "negative": self.negative, "min": self.min if self.moments else None,
                "max": self.max if self.moments else None, "moments": self.moments,
                "sketch": self.sketch.to_model_monitor()}

    @classmethod
    def from_dict(cls, doc: dict) -> "NumericProfile":
        out = cls()
        out.rows, out.present, out.negative = int(doc["rows"]), int(doc["present"]), int(doc["negative"])
        out.not_numeric, out.fractional = Examples.from_dict(doc["not_numeric"]), Examples.from_dict(doc["fractional"])
        if doc["moments"]:
            out.min, out.max = float(doc["min"]), float(doc["max"])
        out.moments = [list(m) for m in doc["moments"]]
        out.sketch = KLL.from_model_monitor(doc["sketch"])
        return out


class StringProfile:
    kind = "string"

    def __init__(self, seed: int = 0):
        self.rows = self.present = 0
        self.counts: dict[str, int] = {}
        self.dropped = 0  # values no longer counted one by one (more than MAX_TRACKED_VALUES distinct)
        self.hashes = np.empty(0, dtype=np.uint64)  # the KMV_SIZE smallest hashes of the distinct values

    def update(self, chunk, series: pd.Series) -> None:
        self.rows += len(series)
        values = series.dropna().astype(str)
        self.present += len(values)
        counts = values.value_counts(sort=False)
        for value, count in zip(counts.index.tolist(), counts.tolist()):
            self.counts[value] = self.counts.get(value, 0) + int(count)
        self._add_hashes(pd.util.hash_array(counts.index.to_numpy(dtype=object)))
        self._bound()

    def _add_hashes(self, hashes: np.ndarray) -> None:
        self.hashes = np.unique(np.concatenate([self.hashes, hashes.astype(np.uint64)]))[:KMV_SIZE]

    def _bound(self) -> None:
        if len(self.counts) > 2 * MAX_TRACKED_VALUES:  # keep the most frequent; the rest is a total
            keep = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TRACKED_VALUES]
            self.dropped += sum(self.counts.values()) - sum(c for _, c in keep)
            self.counts = dict(keep)

    def merge(self, other: "StringProfile") -> None:
        self.rows += other.rows
        self.present += other.present
        for value, count in other.counts.items():
            self.counts[value] = self.counts.get(value, 0) + count
        self.dropped += other.dropped
        self._add_hashes(other.hashes)
        self._bound()

    def distinct_count(self) -> float:
        if not self.dropped and len(self.hashes) < KMV_SIZE:
            return float(len(self.counts))  # exact
        if len(self.hashes) < KMV_SIZE:
            return float(len(self.hashes))
        return float((KMV_SIZE - 1) / ((float(self.hashes[-1]) + 1.0) / 2.0 ** 64))

    def sorted_counts(self) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def statistics(self) -> dict:
        buckets = [{"value": v, "count": c} for v, c in self.sorted_counts()[:MAX_CATEGORICAL_BUCKETS]]
        return {"common": {"num_present": self.present, "num_missing": self.rows - self.present},
                "distinct_count": self.distinct_count(),
                "distribution": {"categorical": {"buckets": buckets}}}

    def to_dict(self) -> dict:
        return {"kind": self.kind, "rows": self.rows, "present": self.present, "counts": self.counts,
                "dropped": self.dropped, "hashes": [str(h) for h in self.hashes.tolist()]}

    @classmethod
    def from_dict(cls, doc: dict) -> "StringProfile":
        out = cls()
        out.rows, out.present, out.dropped = int(doc["rows"]), int(doc["present"]), int(doc["dropped"])
        out.counts = {str(k): int(v) for k, v in doc["counts"].items()}
        out.hashes = np.asarray([int(h) for h in doc["hashes"]], dtype=np.uint64)
        return out


class TypeProbe:
    """First pass for columns of unknown type: String if any present value is not a number."""

    def __init__(self):
        self.present = self.text = 0
        self.fraction = False

    def update(self, chunk, series: pd.Series) -> None:
        vals, present, numeric = to_numeric(series)
        self.present += int(present.sum())
        self.text += int((present & ~numeric).sum())
        v = vals[numeric]
        self.fraction = self.fraction or bool(np.any(v != np.floor(v)))

    def inferred_type(self) -> str:
        if not self.present:
            return "Unknown"
        if self.text:
            return "String"
        return "Fractional" if self.fraction else "Integral"


def new_profile(kind: str, seed: int = 0):
    return NumericProfile(seed) if kind in NUMERIC_TYPES else StringProfile(seed)


def profile_from_dict(doc: dict):
    return NumericProfile.from_dict(doc) if doc["kind"] == "numeric" else StringProfile.from_dict(doc)
