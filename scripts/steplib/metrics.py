"""Regression metrics in SageMaker's evaluation.json shape, with bootstrap standard errors."""

from __future__ import annotations

import math

import numpy as np


def _point(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
    err = p - t
    mse = float(np.mean(err**2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else 0.0
    return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(err))), "r2": r2}


def regression_metrics(y_true, y_pred, n_boot: int = 200, seed: int = 0) -> dict[str, dict[str, float]]:
    """{"mse"|"rmse"|"mae"|"r2": {"value": x, "standard_deviation": s}}; s is the bootstrap standard error
    (``n_boot`` resamples, fixed seed, so a report is reproducible)."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError(f"need two equal-length non-empty vectors, got {y_true.shape} and {y_pred.shape}")
    rng = np.random.default_rng(seed)
    boots = [_point(y_true[i], y_pred[i]) for i in (rng.integers(0, len(y_true), len(y_true)) for _ in range(n_boot))]
    return {k: {"value": v, "standard_deviation": float(np.std([b[k] for b in boots]))}
            for k, v in _point(y_true, y_pred).items()}
