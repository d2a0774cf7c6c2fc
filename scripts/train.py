"""TrainingStep: fit a regressor on the transformed train split; serve it for batch transform.

Channels (SM_CHANNEL_*): train/ and validation/ (headerless CSV: target first, then transformed features),
preprocessor/ (preprocessor.joblib + dataset_schema.json from TrainingPreProcessStep).
Writes SM_MODEL_DIR/{model.joblib, preprocessor.joblib, dataset_schema.json}; prints `validation:mse=<float>`.
Serving (SageMaker scikit-learn container convention): model_fn/input_fn/predict_fn/output_fn, text/csv of
transformed features in, one prediction per line out, same order and count.
"""

import argparse
import csv
import io
import math
import os
import shutil
import sys
import traceback

import joblib
import numpy as np

DEFAULTS = {  # fallback hyperparameters; the pipeline YAML sets them explicitly (see bench/measure_model_quality.py)
    "algorithm": "random_forest_svr", "n_estimators": 300, "max_depth": 0, "min_samples_leaf": 4,
    "max_features": "0.7", "learning_rate": 0.05, "subsample": 0.5, "svr_c": 30.0, "svr_epsilon": 0.2,
    "seed": 42,
}
ALGORITHMS = ("random_forest", "random_forest_svr", "xgboost")


def container_path(path):  # env SM_CONTAINER_ROOT relocates /opt/ml (offline runtime, tests)
    root = os.environ.get("SM_CONTAINER_ROOT")
    return path.replace("/opt/ml", root, 1) if root and path.startswith("/opt/ml") else path


class InputError(Exception):
    """Bad input: the message names the file, the row and the problem."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # bad arguments also end in a failure message, not a bare exit 2
        raise InputError(f"bad arguments: {message}")


def parse_numeric_csv(text, source, n_columns=None):
    """Headerless numeric CSV -> 2-D float array; any bad line is an error naming source and line."""
    rows = []
    try:
        for lineno, row in enumerate(csv.reader(io.StringIO(text), strict=True), start=1):
            if not row or all(not v.strip() for v in row):
                raise InputError(f"{source}: line {lineno}: empty line")
            if n_columns is None:
                n_columns = len(row)
            if len(row) != n_columns:
                raise InputError(f"{source}: line {lineno}: expected {n_columns} columns, found {len(row)}")
            try:
                values = [float(v) for v in row]
            except ValueError:
                bad = next(v for v in row if not _is_float(v))
                col = row.index(bad) + 1
                raise InputError(f"{source}: line {lineno}: non-numeric value {bad!r} in column {col}") from None
            if not all(math.isfinite(v) for v in values):
                raise InputError(f"{source}: line {lineno}: missing or non-finite value")
            rows.append(values)
    except csv.Error as exc:
        raise InputError(f"{source}: malformed CSV: {exc}") from None
    if not rows:
        raise InputError(f"{source}: empty input (no rows)")
    return np.asarray(rows, dtype=float)


def _is_float(value):
    try:
        float(value)
        return True
    except ValueError:
        return False


def read_channel(directory, name):
    if not os.path.isdir(directory):
        raise InputError(f"{directory}: {name} channel directory does not exist")
    files = sorted(os.path.join(d, n) for d, _, ns in os.walk(directory) for n in ns if not n.startswith("."))
    if not files:
        raise InputError(f"{directory}: no input files in the {name} channel")
    parts = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text ({exc})") from None
        parts.append(parse_numeric_csv(text, path, parts[0].shape[1] if parts else None))
    data = np.vstack(parts)
    if data.shape[1] < 2:
        raise InputError(f"{files[0]}: needs the target column plus at least one feature column")
    return data[:, 1:], data[:, 0]


def hp_value(text):
    """Hyperparameters may arrive JSON-quoted (older SDKs): strip the quotes."""
    return str(text).strip().strip('"').strip("'")


def build_model(hp):
    algorithm = hp.algorithm
    max_depth = None if hp.max_depth in (0, None) else hp.max_depth
    if algorithm in ("random_forest", "random_forest_svr"):
        from sklearn.ensemble import RandomForestRegressor
        max_features = hp.max_features
        try:
            max_features = float(max_features)
        except ValueError:
            if max_features not in ("sqrt", "log2"):
                raise InputError(f"hyperparameter max_features={max_features!r}: use a fraction, sqrt or log2")
        forest = RandomForestRegressor(
            n_estimators=hp.n_estimators, max_depth=max_depth, min_samples_leaf=hp.min_samples_leaf,
            max_features=max_features, max_samples=hp.subsample if hp.subsample < 1 else None,
            random_state=hp.seed, n_jobs=-1)
        if algorithm == "random_forest":
            return forest
        # Trees fit the step-like effects, the RBF kernel the smooth size/weight relation; averaging the
        # two lowers validation MSE on Abalone (4.61 -> 4.54, bench/measure_model_quality.py).
        from sklearn.ensemble import VotingRegressor
        from sklearn.svm import SVR
        if hp.svr_c <= 0 or hp.svr_epsilon < 0:
            raise InputError(f"hyperparameters svr_c={hp.svr_c} must be > 0 and svr_epsilon={hp.svr_epsilon} >= 0")
        return VotingRegressor([("forest", forest), ("svr", SVR(C=hp.svr_c, epsilon=hp.svr_epsilon))])
    if algorithm == "xgboost":
        import xgboost  # lazily: the stock scikit-learn container only needs it for this algorithm
        return xgboost.XGBRegressor(
            n_estimators=hp.n_estimators, max_depth=max_depth or 6, learning_rate=hp.learning_rate,
            subsample=hp.subsample, min_child_weight=hp.min_samples_leaf, random_state=hp.seed, n_jobs=-1)
    raise InputError(f"hyperparameter algorithm={algorithm!r}: use one of {', '.join(ALGORITHMS)}")


def parse_args(argv=None):
    p = Parser(description=__doc__)
    for name, default in DEFAULTS.items():
        kind = {int: int, float: float}.get(type(default), str)
        p.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, default=default,
                       type=lambda v, k=kind: k(hp_value(v)))
    env = os.environ.get
    p.add_argument("--model-dir", default=env("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--train", default=env("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--validation", default=env("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    p.add_argument("--preprocessor", default=env("SM_CHANNEL_PREPROCESSOR", "/opt/ml/input/data/preprocessor"))
    p.add_argument("--output-data-dir", default=env("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    return p.parse_args(argv)


def main(argv=None):
    hp = parse_args(argv)
    for name in ("n_estimators", "min_samples_leaf"):
        if getattr(hp, name) < 1:
            raise InputError(f"hyperparameter {name}={getattr(hp, name)} must be >= 1")
    if not 0 < hp.subsample <= 1:
        raise InputError(f"hyperparameter subsample={hp.subsample} must be in (0, 1]")
    x_train, y_train = read_channel(container_path(hp.train), "train")
    x_val, y_val = read_channel(container_path(hp.validation), "validation")
    if x_val.shape[1] != x_train.shape[1]:
        raise InputError(f"{hp.validation}: validation has {x_val.shape[1]} feature columns, "
                         f"train has {x_train.shape[1]}")
    pre_dir = container_path(hp.preprocessor)
    for needed in ("preprocessor.joblib", "dataset_schema.json"):
        if not os.path.isfile(os.path.join(pre_dir, needed)):
            raise InputError(f"{os.path.join(pre_dir, needed)}: missing from the preprocessor channel")
    n_pre = len(joblib.load(os.path.join(pre_dir, "preprocessor.joblib")).get_feature_names_out())
    if n_pre != x_train.shape[1]:
        raise InputError(f"{hp.train}: {x_train.shape[1]} feature columns but the preprocessor makes {n_pre}")
    print(f"training {hp.algorithm} on {len(y_train)} rows x {x_train.shape[1]} features; "
          f"hyperparameters: { {k: getattr(hp, k) for k in DEFAULTS} }")
    model = build_model(hp)
    model.fit(x_train, y_train)
    train_mse = float(np.mean((model.predict(x_train) - y_train) ** 2))
    val_mse = float(np.mean((model.predict(x_val) - y_val) ** 2))
    print(f"train:mse={train_mse:.6f}")
    print(f"validation:mse={val_mse:.6f}")  # the tuning objective's regex reads this line
    model_dir = container_path(hp.model_dir)
    os.makedirs(model_dir, exist_ok=True)
    joblib.dump(model, os.path.join(model_dir, "model.joblib"))
    for name in ("preprocessor.joblib", "dataset_schema.json"):  # shipped with the model for inference
        shutil.copyfile(os.path.join(pre_dir, name), os.path.join(model_dir, name))
    # The serving functions below travel inside model.tar.gz (code/train.py, the container's
    # SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code), so a registered version is self-contained.
    os.makedirs(os.path.join(model_dir, "code"), exist_ok=True)
    shutil.copyfile(os.path.abspath(__file__), os.path.join(model_dir, "code", "train.py"))


# ---------------------------------------------------------------- serving (batch transform)
def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(request_body, request_content_type):
    content_type = (request_content_type or "").split(";")[0].strip().lower()
    if content_type != "text/csv":
        raise ValueError(f"unsupported content type {request_content_type!r}: only text/csv is accepted")
    if isinstance(request_body, (bytes, bytearray)):
        try:
            request_body = request_body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"request body is not UTF-8 text: {exc}") from None
    fast = _parse_numeric_csv_vectorized(request_body)
    if fast is not None:
        return fast
    try:  # unusual or bad input: the strict parser decides and names the line, column and value
        return parse_numeric_csv(request_body, "request body")
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _parse_numeric_csv_vectorized(text):
    """The common case of input_fn in one vectorized pass (pandas' C reader, ~10x the csv module), or None.

    It accepts only what parse_numeric_csv accepts, with the same values: every line a row of the same
    number of finite floats; no missing-value words (na_filter off), no comments, blank lines kept (and
    then rejected). Anything else returns None and the strict parser reports it.
    """
    import pandas as pd  # in the serving container; imported here so training does not pay for it

    try:
        frame = pd.read_csv(io.StringIO(text), header=None, dtype=np.float64, engine="c", na_filter=False,
                            skip_blank_lines=False)
    except Exception:  # noqa: BLE001 - any parse problem: the strict parser reports it precisely
        return None
    values = frame.to_numpy(dtype=np.float64)
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if values.shape[0] != lines or "\r" in text or not np.isfinite(values).all():
        return None
    return values


def predict_fn(input_data, model):
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and input_data.shape[1] != expected:
        raise ValueError(f"request has {input_data.shape[1]} feature columns, the model expects {expected}")
    return model.predict(input_data)


def output_fn(prediction, accept):
    accept_type = (accept or "text/csv").split(";")[0].strip().lower()
    if accept_type not in ("text/csv", "*/*"):
        raise ValueError(f"unsupported accept type {accept!r}: only text/csv is produced")
    # records separated, not terminated: batch transform's AssembleWith=Line ends each response with a newline
    return "\n".join(f"{float(v)!r}" for v in np.ravel(prediction))


def fail(message):
    message = " ".join(str(message).split())[:1000]  # one line; SageMaker FailureReason is short
    print(f"ERROR: {message}", file=sys.stderr)
    # Training jobs read /opt/ml/output/failure; the contract (and processing jobs) use .../message.
    for name in ("message", "failure"):
        path = container_path(f"/opt/ml/output/{name}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(message + "\n")
    sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except InputError as exc:
        fail(exc)
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed: traceback + failure message
        traceback.print_exc()
        fail(f"train failed: {type(exc).__name__}: {exc}")
