"""Distances between a baseline and the current distribution, as Model Monitor computes them."""
from __future__ import annotations

import math

import numpy as np

from .kll import sketch_points_of_levels

ROBUST_C = 1.8  # KS critical coefficient c(alpha) ~ alpha 0.003 (Deequ/Model Monitor)


def sketch_points(numerical_stats: dict | None):
    """(sorted values, cumulative weights) of a statistics entry's KLL sketch, or None.

    Reads Model Monitor's sketch layout: data[level] items weigh 2**level. Without a sketch
    falls back to the buckets (mass placed at each bucket's upper bound).
    """
    kll = ((numerical_stats or {}).get("distribution") or {}).get("kll") or {}
    points = sketch_points_of_levels((kll.get("sketch") or {}).get("data"))
    if points is not None:
        return points
    vals, weights = [], []
    for b in kll.get("buckets") or []:
        if float(b.get("count", 0)) > 0:
            vals.append(float(b["upper_bound"]))
            weights.append(float(b["count"]))
    if not vals:
        return None
    v = np.asarray(vals)
    order = np.argsort(v, kind="stable")
    return v[order], np.cumsum(np.asarray(weights)[order])


def numeric_linf(base_stats: dict | None, cur_stats: dict | None):
    """(L-infinity distance between the two sketch CDFs on the union of their items, n, m) or None."""
    b, c = sketch_points(base_stats), sketch_points(cur_stats)
    if b is None or c is None:
        return None
    grid = np.union1d(b[0], c[0])

    def cdf(points, x):
        vals, cum = points
        idx = np.searchsorted(vals, x, side="right")
        return np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0) / cum[-1]

    return float(np.max(np.abs(cdf(b, grid) - cdf(c, grid)))), float(b[1][-1]), float(c[1][-1])


def categorical_counts(string_stats: dict | None) -> dict[str, float]:
    buckets = (((string_stats or {}).get("distribution") or {}).get("categorical") or {}).get("buckets") or []
    counts: dict[str, float] = {}
    for bk in buckets:
        counts[str(bk["value"])] = counts.get(str(bk["value"]), 0.0) + float(bk["count"])
    return counts


def categorical_linf(base_counts: dict, cur_counts: dict):
    n, m = sum(base_counts.values()), sum(cur_counts.values())
    if n <= 0 or m <= 0:
        return None
    keys = set(base_counts) | set(cur_counts)
    d = max(abs(base_counts.get(k, 0.0) / n - cur_counts.get(k, 0.0) / m) for k in keys)
    return d, n, m


def chi_squared_pvalue(base_counts: dict, cur_counts: dict):
    """Goodness-of-fit p-value of current counts against the baseline proportions.

    Only baseline categories count (unseen ones are the categorical_values_check's job);
    categories expected below 5 are merged so the chi-squared approximation holds.
    """
    from scipy.stats import chi2  # scipy ships with scikit-learn (and so with its container)

    keys = sorted(base_counts, key=lambda k: base_counts[k])
    n = sum(base_counts.values())
    m = sum(cur_counts.get(k, 0.0) for k in keys)
    if n <= 0 or m <= 0 or len(keys) < 2:
        return None
    exp = [base_counts[k] / n * m for k in keys]
    obs = [cur_counts.get(k, 0.0) for k in keys]
    merged_e, merged_o, acc_e, acc_o = [], [], 0.0, 0.0
    for e, o in zip(exp, obs):  # ascending expected: pool the small ones
        acc_e, acc_o = acc_e + e, acc_o + o
        if acc_e >= 5:
            merged_e.append(acc_e)
            merged_o.append(acc_o)
            acc_e = acc_o = 0.0
    if acc_e > 0 and merged_e:
        merged_e[-1] += acc_e
        merged_o[-1] += acc_o
    if len(merged_e) < 2:
        return None
    e, o = np.asarray(merged_e), np.asarray(merged_o)
    stat = float(np.sum((o - e) ** 2 / e))
    return float(chi2.sf(stat, len(e) - 1))


def drift_distance(linf_simple: float, n: float, m: float, method: str) -> float:
    """Distance compared with the threshold: 'Simple' or 'Robust' L-infinity.

    Simple is the raw L-infinity distance D. Robust (Model Monitor's default, as in Deequ)
    subtracts the two-sample Kolmogorov-Smirnov critical value for sample sizes n and m:
        D_robust = max(0, D - 1.8 * sqrt((n + m) / (n * m)))
    1.8 = c(alpha) = sqrt(-ln(alpha / 2) / 2) for alpha ~ 0.003, so D_robust > threshold
    means the shift exceeds the threshold even after allowing for sampling noise of two
    samples of these sizes; small batches then do not raise false drift alarms.
    """
    if str(method).lower() == "simple":
        return linf_simple
    return max(0.0, linf_simple - ROBUST_C * math.sqrt((n + m) / (n * m)))
