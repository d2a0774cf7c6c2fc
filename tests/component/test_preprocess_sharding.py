"""Sharded preprocessing, run as the containers run it (SM_CONTAINER_ROOT relocates /opt/ml; every instance has
its own /opt/ml/config/resourceconfig.json), on data generated from the current schema.

* Training: TrainingPreProcessShardsStep (--partial) on each instance over its ShardedByS3Key share, then the
  one-instance TrainingPreProcessStep (--parts-dir) gives exactly the outputs of a single pass.
* Inference: every instance transforms its own files into part files; the transform's outputs of those parts
  pair back with the right rows in DataCheckPreProcessingStep.

ShardedByS3Key ("each instance receives 1/n of the objects"):
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Input.html
resourceconfig.json: https://docs.aws.amazon.com/sagemaker/latest/dg/build-your-own-processing-container.html
"""
import json
import shutil

import joblib
import numpy as np
import pytest
from test_step_scripts import (SCHEMA, SCHEMA_DICT, T_INDEX, csv_rows, make_tar, message, run, synth, training_rows,
                               write)

# names whose path order differs from the order of the same names with a suffix ("a" < "a-b", "a.csv" > "a-b.csv")
FILES = ["a", "a-b", "b/c.csv", "d.csv", "e.csv"]
ARGS = ["--validation-ratio", "0.2", "--test-ratio", "0.2", "--seed", "7"]
OUTPUTS = ["train/train.csv", "validation/validation.csv", "test/test.csv", "baseline/baseline.csv",
           "preprocessor/preprocessing.json", "preprocessor/dataset_schema.json"]


def resource_config(root, host, hosts):
    write(root / "config/resourceconfig.json", json.dumps({"current_host": host, "hosts": hosts}))


def training_files(n=600, seed=5):
    """Rows spread over FILES, with missing values (imputed), missing targets (dropped) and exact duplicates
    across files (dropped, the first kept): what the merge must see across shards."""
    frame = synth.generate(SCHEMA_DICT, n, seed, missing=0.05, missing_target=0.02)
    rows = synth.rows_text(frame, SCHEMA_DICT.columns)
    rows += rows[:25]  # duplicates of rows in the first files land in the last ones
    return {name: csv_rows(rows[i::len(FILES)]) for i, name in enumerate(FILES)}


def stage(root, files, schema=True):
    for name, text in files.items():
        write(root / "processing/input/data" / name, text)
    if schema:
        write(root / "processing/input/schema/dataset_schema.json", SCHEMA.read_text())


def shard(files, i, n):
    """Instance i's share of the objects (every n-th key in key order, as the offline runtime deals them)."""
    return {name: files[name] for name in sorted(files)[i::n]}


def run_shards(tmp_path, files, n):
    """Run the shard step on n instances; returns the merge instance's root with every shard's parts staged."""
    hosts = [f"algo-{i + 1}" for i in range(n)]
    merge = tmp_path / "merge/opt/ml"
    for i, host in enumerate(hosts):
        root = tmp_path / host / "opt/ml"
        stage(root, shard(files, i, n))
        resource_config(root, host, hosts)
        proc = run("preprocess_training.py", root, ["--partial"])
        assert proc.returncode == 0, proc.stderr
        (merge / "processing/input/parts").mkdir(parents=True, exist_ok=True)
        for part in (root / "processing/output/parts").iterdir():
            shutil.copyfile(part, merge / "processing/input/parts" / part.name)
    write(merge / "processing/input/schema/dataset_schema.json", SCHEMA.read_text())
    return merge


def test_sharded_training_preprocessing_equals_a_single_pass(tmp_path):
    """Same rows cleaned, same splits, same fitted preprocessing, byte-identical outputs (4 instances, 5 files)."""
    files = training_files()
    single = tmp_path / "single/opt/ml"
    stage(single, files)
    proc = run("preprocess_training.py", single, ARGS)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((single / "processing/output/preprocessor/preprocessing.json").read_text())
    assert report["duplicate_rows_dropped"] >= 25 and report["rows_missing_target_dropped"] > 0
    assert report["missing_values"]
    x = np.loadtxt(single / "processing/output/test/test.csv", delimiter=",", ndmin=2)
    for n in (4,):
        merge = run_shards(tmp_path / f"n{n}", files, n)
        proc = run("preprocess_training.py", merge, [*ARGS, "--parts-dir", "/opt/ml/processing/input/parts"])
        assert proc.returncode == 0, proc.stderr
        for rel in OUTPUTS:
            assert (merge / "processing/output" / rel).read_bytes() == \
                (single / "processing/output" / rel).read_bytes(), rel
        fitted = [joblib.load(r / "processing/output/preprocessor/preprocessor.joblib") for r in (single, merge)]
        numeric = [f.named_transformers_["numeric"] for f in fitted]
        assert np.array_equal(numeric[0][0].statistics_, numeric[1][0].statistics_)  # the medians
        assert np.array_equal(numeric[0][1].mean_, numeric[1][1].mean_)
        assert np.array_equal(numeric[0][1].scale_, numeric[1][1].scale_)
        raw = synth.generate(SCHEMA_DICT, 50, 11)
        assert np.array_equal(fitted[0].transform(raw), fitted[1].transform(raw))
        assert x.shape[0] == report["test_rows"]


def test_the_merge_refuses_a_lost_or_doubled_part(tmp_path):
    """3 files on 4 instances: the fourth gets no objects and writes an empty index; the merge still reads all
    3 files, and refuses a part that lost a row or a file that two shards read."""
    files = {name: text for name, text in training_files(200).items() if name in FILES[:3]}
    merge = run_shards(tmp_path, files, 4)
    parts = merge / "processing/input/parts"
    assert json.loads((parts / "index-algo-4.json").read_text()) == []
    proc = run("preprocess_training.py", merge, ["--parts-dir", "/opt/ml/processing/input/parts"])
    assert proc.returncode == 0, proc.stderr
    assert all(f"read {len(files[n].splitlines())} rows of " in proc.stdout for n in files)
    part = sorted(parts.glob("part-*.npz"))[0]
    good = part.read_bytes()
    with np.load(part) as arrays:
        columns = {k: arrays[k] for k in arrays.files}
    n = len(columns["_line"])
    np.savez(part, **{k: v[:-1] for k, v in columns.items()})  # a row lost in transit
    proc = run("preprocess_training.py", merge, ["--parts-dir", "/opt/ml/processing/input/parts"])
    assert proc.returncode != 0
    assert f"{part.name}: [{n - 1}] rows, its index says {n}" in message(merge)
    part.write_bytes(good)
    shutil.copyfile(parts / "index-algo-1.json", parts / "index-algo-9.json")  # as a FullyReplicated input would
    proc = run("preprocess_training.py", merge, ["--parts-dir", "/opt/ml/processing/input/parts"])
    assert proc.returncode != 0 and "was read by two shards" in message(merge)


def test_a_shard_reports_bad_input_with_file_line_and_column(tmp_path):
    root = tmp_path / "opt/ml"
    bad = training_rows(3)
    number = next(c for c in SCHEMA_DICT.columns if c.is_numeric and c.name != SCHEMA_DICT.target).name
    bad[1][SCHEMA_DICT.names.index(number)] = "oops"
    stage(root, {"x.csv": csv_rows(bad)})
    resource_config(root, "algo-2", ["algo-1", "algo-2"])
    proc = run("preprocess_training.py", root, ["--partial"])
    assert proc.returncode != 0
    assert f"x.csv: line 2: non-numeric value 'oops' in numeric column '{number}'" in message(root)


# ---------------------------------------------------------------- inference: part files, pairing
@pytest.fixture(scope="module")
def model_tar(tmp_path_factory):
    """A model.tar.gz carrying the fitted preprocessing (what the inference steps read from the model)."""
    base = tmp_path_factory.mktemp("model")
    root = base / "opt/ml"
    stage(root, {"training-data.csv": csv_rows(training_rows(300, seed=2))})
    proc = run("preprocess_training.py", root)
    assert proc.returncode == 0, proc.stderr
    tar = base / "model.tar.gz"
    make_tar(tar, sorted((root / "processing/output/preprocessor").iterdir()))
    return tar


def feature_files():
    rows = [r[:T_INDEX] + r[T_INDEX + 1:] for r in training_rows(23, seed=9)]
    return {"batch/x.csv": csv_rows(rows[:10]), "batch/y.csv": csv_rows(rows[10:11]), "z.csv": csv_rows(rows[11:])}


def preprocess_inference(root, model_tar, files, part_files, host=None, hosts=None):
    stage(root, files, schema=False)
    (root / "processing/model").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_tar, root / "processing/model/model.tar.gz")
    if host:
        resource_config(root, host, hosts)
    return run("preprocess_inference.py", root, ["--part-files", str(part_files)])


def outputs(root):
    out = root / "processing/output/transformed"
    return {p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}


def test_inference_preprocessing_writes_parts_and_shards_write_the_same_parts(tmp_path, model_tar):
    files = feature_files()
    single = tmp_path / "single/opt/ml"
    proc = preprocess_inference(single, model_tar, files, 3)
    assert proc.returncode == 0, proc.stderr
    parts = outputs(single)
    # 3 parts per file, fewer for a file with fewer rows; every row once, in order
    assert sorted(parts) == ["batch/x.csv/part-00000-of-00003.csv", "batch/x.csv/part-00001-of-00003.csv",
                             "batch/x.csv/part-00002-of-00003.csv", "batch/y.csv/part-00000-of-00001.csv",
                             "z.csv/part-00000-of-00003.csv", "z.csv/part-00001-of-00003.csv",
                             "z.csv/part-00002-of-00003.csv"]
    assert [len(parts[f"batch/x.csv/part-0000{k}-of-00003.csv"].splitlines()) for k in range(3)] == [3, 4, 3]
    one_part = tmp_path / "one/opt/ml"
    assert preprocess_inference(one_part, model_tar, files, 1).returncode == 0
    whole = outputs(one_part)
    for name in files:
        assert "".join(v for k, v in parts.items() if k.startswith(name + "/")) == whole[f"{name}/part-00000-of-00001.csv"]
    # two instances, each with its ShardedByS3Key share: together exactly the single instance's parts
    hosts = ["algo-1", "algo-2", "algo-3", "algo-4"]
    together = {}
    for i, host in enumerate(hosts):
        root = tmp_path / host / "opt/ml"
        share = shard(files, i, len(hosts))
        proc = preprocess_inference(root, model_tar, share, 3, host, hosts)
        assert proc.returncode == 0, proc.stderr
        mine = outputs(root) if share else {}
        assert not set(mine) & set(together)
        together.update(mine)
    assert together == parts


def test_predictions_of_parts_pair_with_their_own_rows(tmp_path, model_tar):
    """DataCheckPreProcessingStep pairs <file>/part-k.csv.out with the rows of <file> in part order: each row of
    the data check carries the prediction computed from that very row."""
    files = feature_files()
    root = tmp_path / "opt/ml"
    assert preprocess_inference(root, model_tar, files, 3).returncode == 0
    # the "model": a prediction that names its file and row (what a transform of each part would return)
    starts = {}
    for rel, text in outputs(root).items():
        name = rel.rsplit("/", 1)[0]
        first = starts.get(name, 0)
        n = len(text.splitlines())
        starts[name] = first + n
        write(root / "processing/input/predictions" / (rel + ".out"),
              "".join(f"{sorted(files).index(name)}{first + i:04d}\n" for i in range(n)))
    for name, text in files.items():
        write(root / "processing/input/batch" / name, text)
    args = ["--object-key", "p/inference/input/", "--input-prefix", "p/inference/input"]
    proc = run("prepare_data_check.py", root, args)
    assert proc.returncode == 0, proc.stderr
    predictions = (root / "processing/output/prediction_check/predictions.csv").read_text().splitlines()[1:]
    assert predictions == [f"{f}{i:04d}" for f, name in enumerate(sorted(files))
                           for i in range(len(files[name].splitlines()))]
    # a lost part and a stray file are refused, naming them
    lost = root / "processing/input/predictions/z.csv/part-00001-of-00003.csv.out"
    text = lost.read_text()
    lost.unlink()
    proc = run("prepare_data_check.py", root, args)
    assert proc.returncode != 0 and "predictions of batch file z.csv are incomplete" in message(root)
    write(lost, text)
    write(root / "processing/input/predictions/inference-transformed.csv.out", "1\n")
    proc = run("prepare_data_check.py", root, args)
    assert proc.returncode != 0 and "inference-transformed.csv.out: not a prediction part of this batch" in message(root)
