"""Training job (contracts/pipelines.json role training): fit a regressor on the transformed train split; serve it for batch transform.

Channels (SM_CHANNEL_*): train/ and validation/ (headerless CSV: target first, then transformed features),
preprocessor/ (preprocessor.joblib, dataset_schema.json, preprocessing.json from the training preprocessing).
Hyperparameters: as steplib/algorithms.py declares them for --algorithm (unknown or out-of-range ones fail).
Writes SM_MODEL_DIR/{model.joblib, preprocessor.joblib, dataset_schema.json, preprocessing.json, code/train.py,
code/steplib/}; prints `validation:mse=<float>`. Failures go to /opt/ml/output/failure (training jobs).
Serving (SageMaker scikit-learn container convention): model_fn/input_fn/predict_fn/output_fn, text/csv of
transformed features in, one prediction per line out, same order and count.
"""

import io
import os
import shutil

import joblib
import numpy as np

from steplib import InputError, Parser, container_path, list_files, run_main
from steplib import algorithms
from steplib.csvio import parse_number, read_numeric, text_records

# What travels with the model to the serving container (SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code).
MODEL_FILES = ("preprocessor.joblib", "dataset_schema.json", "preprocessing.json")


def parse_numeric_csv(text, source, n_columns=None):
    """Headerless numeric CSV -> 2-D float array; any bad line is an error naming source, line and column."""
    rows = [[parse_number(v, source, line, str(i + 1)) for i, v in enumerate(cells)]
            for line, cells in text_records(text, source, n_columns)]
    if not rows:
        raise InputError(f"{source}: empty input (no rows)")
    return np.asarray(rows, dtype=float)


def read_channel(directory, name):
    parts = []
    for path in list_files(directory, f"{name} channel"):
        parts.append(np.asarray(read_numeric(path, parts[0].shape[1] if parts else None), dtype=float))
    data = np.vstack(parts)
    if data.shape[1] < 2:
        raise InputError(f"{directory}: needs the target column plus at least one feature column")
    return data[:, 1:], data[:, 0]


def parse_args(argv=None):
    """Hyperparameters as the algorithm registry declares them; a name the chosen algorithm does not take,
    or a value out of its range, is an error."""
    p = Parser(description=__doc__)
    p.add_argument("--algorithm", default=algorithms.DEFAULT_ALGORITHM)
    names = sorted({hp.name for a in algorithms.ALGORITHMS.values() for hp in a.hyperparameters})
    for name in names:
        p.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, default=None)
    env = os.environ.get
    p.add_argument("--model-dir", default=env("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--train", default=env("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--validation", default=env("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    p.add_argument("--preprocessor", default=env("SM_CHANNEL_PREPROCESSOR", "/opt/ml/input/data/preprocessor"))
    p.add_argument("--output-data-dir", default=env("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    args = p.parse_args(argv)
    algorithm = algorithms.get(str(args.algorithm).strip().strip('"').strip("'"))
    hps = algorithm.defaults()
    for name in names:
        value = getattr(args, name)
        if value is None:
            continue
        if name not in algorithm.names:
            raise InputError(f"hyperparameter {name}={value!r} does not apply to algorithm {algorithm.name} "
                             f"(its hyperparameters: {', '.join(algorithm.names)})")
        hps[name] = algorithm.hyperparameter(name).parse(value)
    return args, algorithm, hps


def main(argv=None):
    args, algorithm, hps = parse_args(argv)
    x_train, y_train = read_channel(container_path(args.train), "train")
    x_val, y_val = read_channel(container_path(args.validation), "validation")
    if x_val.shape[1] != x_train.shape[1]:
        raise InputError(f"{args.validation}: validation has {x_val.shape[1]} feature columns, "
                         f"train has {x_train.shape[1]}")
    pre_dir = container_path(args.preprocessor)
    for needed in MODEL_FILES:
        if not os.path.isfile(os.path.join(pre_dir, needed)):
            raise InputError(f"{os.path.join(pre_dir, needed)}: missing from the preprocessor channel")
    n_pre = len(joblib.load(os.path.join(pre_dir, "preprocessor.joblib")).get_feature_names_out())
    if n_pre != x_train.shape[1]:
        raise InputError(f"{args.train}: {x_train.shape[1]} feature columns but the preprocessor makes {n_pre}")
    print(f"training {algorithm.name} on {len(y_train)} rows x {x_train.shape[1]} features "
          f"(target standardized); hyperparameters: {hps}")
    model = algorithm.estimator(hps)
    model.fit(x_train, y_train)
    train_pred, val_pred = model.predict(x_train), model.predict(x_val)
    if not (np.all(np.isfinite(train_pred)) and np.all(np.isfinite(val_pred))):
        raise InputError(f"{algorithm.name} produced non-finite predictions (check the target's scale)")
    print(f"train:mse={float(np.mean((train_pred - y_train) ** 2)):.6f}")
    # the tuning objective's regex reads this line
    print(algorithms.OBJECTIVE_LINE.format(value=float(np.mean((val_pred - y_val) ** 2))))
    model_dir = container_path(args.model_dir)
    os.makedirs(model_dir, exist_ok=True)
    joblib.dump(model, os.path.join(model_dir, "model.joblib"))
    for name in MODEL_FILES:  # shipped with the model for inference
        shutil.copyfile(os.path.join(pre_dir, name), os.path.join(model_dir, name))
    # The serving functions below travel inside model.tar.gz (code/train.py and the step library it
    # imports; the container's SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code), so a version is self-contained.
    here = os.path.dirname(os.path.abspath(__file__))
    code = os.path.join(model_dir, "code")
    os.makedirs(code, exist_ok=True)
    shutil.copyfile(os.path.abspath(__file__), os.path.join(code, "train.py"))
    shutil.copytree(os.path.join(here, "steplib"), os.path.join(code, "steplib"), dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


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


if __name__ == "__main__":
    run_main(main, "train", job="training")
