"""The demo's data batches, derived from the current schema, so `make demo` tells the same story on any data set.

- Your data (data/*.csv, the default): training and the first scored batch are your files; the two drifted
  batches are disjoint random draws of up to MAX_DRIFT_ROWS of your labelled rows (held-out and training),
  moved by tools/synth.py's deterministic shift (first numeric feature past its range, target +1.5 sd).
- Synthetic (`rows` given, as the tests do): every batch comes from tools/synth.py, scaled to the MSE threshold
  of the tfvars so a fitted model passes, a model that missed the drift breaches, and a retrained one passes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import synth

FILES = ("training-data.csv", "inference-data.csv", "ground-truth.csv")
SEED = 7
MAX_DRIFT_ROWS = 1000


def mse_threshold(env_file: Path) -> float:
    from pipeline_scripts.config import load_env

    return float(load_env(env_file).accuracy_mse_threshold)


def _note(folder: Path, text: str) -> None:
    (folder / "README.md").write_text(f"# Demo batch\n\n{text}\n")


def _labelled(folder: Path, schema: dict) -> pd.DataFrame:
    feats = synth.read_csv(folder / "inference-data.csv", schema, schema.features)
    truth = synth.read_csv(folder / "ground-truth.csv", schema, [schema.target_column])
    if len(feats) != len(truth):
        raise ValueError(f"{folder}: inference-data.csv has {len(feats)} rows, ground-truth.csv {len(truth)}")
    feats[schema.target] = truth[schema.target].to_numpy()
    return feats[schema.names]


def demo_batches(repo: Path, out: Path, env_file: Path, rows: int | None = None, inference_rows: int = 1000,
                 drift_rows: int | None = None) -> tuple[Path, Path, Path]:
    """Folders (normal, drifted, later drifted), each in the project's convention."""
    schema = synth.load_schema(repo / "scripts" / "dataset_schema.json")
    data = repo / "data"
    drift, later = out / "data-drift", out / "data-drift-later"
    if rows is None and all((data / n).exists() for n in FILES):
        train = synth.read_csv(data / "training-data.csv", schema)
        held = _labelled(data, schema)
        pool = pd.concat([held, train[train[schema.target].notna()]], ignore_index=True)
        source = "rows (held-out and training rows)"
        n = min(drift_rows or MAX_DRIFT_ROWS, len(pool) // 2)
        if n < 1:
            raise ValueError(f"{data}: too few rows to draw drifted batches from")
        order = np.random.default_rng(SEED).permutation(len(pool))
        for folder, part in ((drift, order[:n]), (later, order[n:2 * n])):
            rows_ = synth.apply_drift(pool.iloc[part].reset_index(drop=True), schema, reference=train)
            synth.write_split(rows_, schema, folder, training=False)
            _note(folder, f"{n} of your {source}, moved by tools/synth.py's drift (seed {SEED}).")
        print(f"  demo data: {data} (yours); drifted batches: {n} rows each from your {source}", flush=True)
        return data, drift, later
    threshold = mse_threshold(env_file)
    scales = synth.scales_for_threshold(threshold)
    normal = out / "data"
    n_train = rows or 4177
    synth.write_split(synth.generate(schema, n_train, SEED, **scales), schema, normal, training=True)
    synth.write_split(synth.generate(schema, inference_rows, SEED + 1, **scales), schema, normal, training=False)
    _note(normal, f"synthetic from the schema: {n_train} training rows, {inference_rows} scored rows.")
    for folder, seed in ((drift, SEED + 1000), (later, SEED + 2000)):
        batch = synth.generate(schema, drift_rows or inference_rows, seed, drift=True, **scales)
        synth.write_split(batch, schema, folder, training=False)
        _note(folder, f"synthetic drifted population (seed {seed}).")
    print(f"  demo data: synthetic from the schema, scaled to the MSE threshold {threshold:g}", flush=True)
    return normal, drift, later
