"""The reference data sets of `make bench-models SUITE=1`: shapes the default model must handle, written as CSV +
schema so that they go through the template's own import, features and preprocessing like a user's data.

    diabetes   scikit-learn's diabetes data (442 rows, bundled with scikit-learn: no download), a categorical
               with numeric labels; close to linear
    friedman   Friedman #1 (2,000 rows): sin, square and interaction terms plus noise; nonlinear
    linear     15 features, 10 informative, Gaussian noise (1,000 rows); linear
    penguins   a penguins-like set (340 rows): mass in grams, linear in flipper and bill length, with species and
               sex offsets (two categoricals)

Fixed seeds: the same files on every machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def _write(out: Path, name: str, frame: pd.DataFrame, columns: list[dict], target: str) -> tuple[Path, Path]:
    data, schema = out / f"{name}.csv", out / f"{name}.json"
    frame.to_csv(data, index=False)
    schema.write_text(json.dumps({"name": name, "columns": columns, "target": target}, indent=2))
    return data, schema


def _floats(names) -> list[dict]:
    return [{"name": n, "type": "float"} for n in names]


def write(out: Path) -> list[tuple[Path, Path]]:
    """Write the four sets to ``out``; (csv, schema) pairs."""
    from sklearn.datasets import load_diabetes, make_friedman1, make_regression

    out.mkdir(parents=True, exist_ok=True)
    sets = []
    d = load_diabetes(scaled=False, as_frame=True).frame.rename(columns={"target": "progression"})
    d = d[["progression", *(c for c in d.columns if c != "progression")]].astype({"sex": int})
    columns = [{"name": "progression", "type": "float", "min": 0}] + [
        {"name": c, "type": "categorical", "categories": [1, 2]} if c == "sex" else {"name": c, "type": "float"}
        for c in d.columns[1:]]
    sets.append(_write(out, "diabetes", d, columns, "progression"))

    x, y = make_friedman1(n_samples=2000, noise=1.0, random_state=1)
    f = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])
    f.insert(0, "y", y)
    sets.append(_write(out, "friedman", f, _floats(f.columns), "y"))

    x, y = make_regression(n_samples=1000, n_features=15, n_informative=10, noise=20.0, random_state=1)
    f = pd.DataFrame(x, columns=[f"x{i}" for i in range(15)])
    f.insert(0, "y", y)
    sets.append(_write(out, "linear", f, _floats(f.columns), "y"))

    rng = np.random.default_rng(5)
    n = 340
    species, sex = rng.choice(["Adelie", "Gentoo", "Chinstrap"], n), rng.choice(["male", "female"], n)
    gentoo = species == "Gentoo"
    bill = rng.normal(44, 5, n) + 3 * gentoo
    flipper = rng.normal(200, 14, n) + 17 * gentoo
    mass = 50 * flipper - 5800 + 500 * (sex == "male") + 800 * gentoo + 20 * bill + rng.normal(0, 300, n)
    p = pd.DataFrame({"body_mass_g": mass.round(), "species": species, "sex": sex,
                      "bill_length_mm": bill.round(1), "flipper_length_mm": flipper.round()})
    columns = [{"name": "body_mass_g", "type": "float", "min": 0},
               {"name": "species", "type": "categorical", "categories": ["Adelie", "Gentoo", "Chinstrap"]},
               {"name": "sex", "type": "categorical", "categories": ["male", "female"]},
               *_floats(["bill_length_mm", "flipper_length_mm"])]
    sets.append(_write(out, "penguins", p, columns, "body_mass_g"))
    return sets
