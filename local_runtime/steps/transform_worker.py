"""Batch-transform serving process (runs as its own interpreter, like the model container).

Loads the entry script with the SageMaker scikit-learn serving convention (model_fn, input_fn, predict_fn,
output_fn; defaults for the last three), splits each input file by line, packs records into mini-batches up
to MaxPayloadInMB (MultiRecord) or one per request (SingleRecord), and assembles <file>.out from the responses
as AssembleWith says (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html).
Up to spec["concurrency"] requests are in flight at once (MaxConcurrentTransforms, capped by the model server's
workers and this instance's share of the local cores), each served by a process forked after model_fn, as the
serving container's model server runs one worker process per vCPU; responses are assembled in input order.
Standalone on purpose: no imports from local_runtime.
Usage: python transform_worker.py spec.json
"""
import importlib.util
import io
import itertools
import json
import os
import sys
import traceback


def _default_input_fn(body, content_type):
    import numpy as np
    if content_type not in ("text/csv", "csv"):
        raise ValueError(f"default input_fn supports text/csv only, got {content_type!r}")
    text = body.decode() if isinstance(body, bytes) else body
    return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)


def _default_predict_fn(data, model):
    return model.predict(data)


def _default_output_fn(prediction, accept):
    import numpy as np
    if accept not in ("text/csv", "csv", None):
        raise ValueError(f"default output_fn supports text/csv only, got {accept!r}")
    arr = np.asarray(prediction)
    buf = io.StringIO()
    np.savetxt(buf, arr if arr.ndim > 1 else arr.reshape(-1, 1), delimiter=",", fmt="%.10g")
    return buf.getvalue()


def load_handlers(code_dir, program):
    sys.path.insert(0, code_dir)
    path = os.path.join(code_dir, program)
    if not os.path.exists(path):
        raise FileNotFoundError(f"SAGEMAKER_PROGRAM {program!r} not found in {code_dir}")
    spec = importlib.util.spec_from_file_location(os.path.splitext(program)[0], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not hasattr(mod, "model_fn"):
        raise AttributeError(f"{program} defines no model_fn(model_dir) (required by the scikit-learn serving convention)")
    return (mod.model_fn, getattr(mod, "input_fn", _default_input_fn), getattr(mod, "predict_fn", _default_predict_fn),
            getattr(mod, "output_fn", _default_output_fn))


def batches(data: bytes, max_bytes: int, single: bool):
    """Yield (payload, n_records) with whole lines only; a record bigger than max_bytes is an error."""
    import numpy as np
    if not data:
        return
    if not data.endswith(b"\n"):
        data += b"\n"
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1  # exclusive end of each line
    starts = np.concatenate(([0], ends[:-1]))
    sizes = ends - starts
    blank = sizes <= 1
    if blank.any():
        # SageMaker sends empty lines as records too; we refuse instead of silently dropping or inventing rows.
        raise ValueError(f"input has {int(blank.sum())} empty line(s) (first at line {int(np.argmax(blank)) + 1})")
    if (sizes > max_bytes).any():
        raise ValueError(f"a record is larger than MaxPayloadInMB ({max_bytes} bytes)")
    i, n = 0, len(ends)
    while i < n:
        if single:
            j = i + 1
        else:
            limit = starts[i] + max_bytes
            j = int(np.searchsorted(ends, limit, side="right"))
            j = max(j, i + 1)
        yield data[starts[i]:ends[j - 1]], j - i
        i = j


_SERVING = None  # (input_fn, predict_fn, output_fn, model, content_type, accept): set before workers fork


def _respond(payload: bytes) -> bytes:
    """One request, as the container serves it: input_fn -> predict_fn -> output_fn."""
    input_fn, predict_fn, output_fn, model, content_type, accept = _SERVING
    result = output_fn(predict_fn(input_fn(payload.decode(), content_type), model), accept)
    if isinstance(result, tuple):
        result = result[0]
    if isinstance(result, str):
        result = result.encode()
    return result


class _Server:
    """Serves requests with up to `concurrency` in flight; responses come back in request order."""

    def __init__(self, concurrency: int):
        self.concurrency, self._pool = max(1, int(concurrency)), None

    def responses(self, requests):
        requests = iter(requests)
        first = next(requests, None)
        if first is None:
            return
        second = next(requests, None)
        if second is None or self.concurrency == 1:  # one request (or one at a time): no worker processes
            for payload, n_rec in itertools.chain([first] if second is None else [first, second], requests):
                yield _respond(payload), n_rec
            return
        import collections
        import multiprocessing

        if self._pool is None:
            self._pool = multiprocessing.get_context("fork").Pool(self.concurrency)
        pending = collections.deque()  # at most 2 x concurrency requests queued: memory stays bounded
        for payload, n_rec in itertools.chain((first, second), requests):
            pending.append((self._pool.apply_async(_respond, (payload,)), n_rec))
            if len(pending) >= 2 * self.concurrency:
                result, n = pending.popleft()
                yield result.get(), n
        while pending:
            result, n = pending.popleft()
            yield result.get(), n

    def close(self):
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None


def main(spec_path):
    """Record assembly as TransformOutput documents it: every response (one per request: a mini-batch under
    MultiRecord, one record under SingleRecord, the whole object under SplitType None) is written as returned,
    followed by a newline when AssembleWith is Line, by nothing when it is None. Nothing is stripped: what
    the model's output_fn returns reaches the next step as it would on AWS."""
    global _SERVING
    spec = json.load(open(spec_path))
    model_fn, input_fn, predict_fn, output_fn = load_handlers(spec["code_dir"], spec["program"])
    model = model_fn(spec["model_dir"])
    payload_mb = float(spec["max_payload_mb"]) if spec.get("max_payload_mb") is not None else 6.0
    max_bytes = int(payload_mb * 1024 * 1024)
    single = spec.get("strategy") == "SingleRecord"
    split = spec.get("split_type") or "None"
    content_type, accept = spec.get("content_type"), spec.get("accept")
    line_end = b"\n" if spec.get("assemble_with") == "Line" else b""
    if max_bytes == 0 and split != "None":
        # 0 means "unbounded, HTTP chunked" and only makes sense for a whole object per request
        raise ValueError("MaxPayloadInMB 0 (chunked encoding) needs SplitType None")
    _SERVING = (input_fn, predict_fn, output_fn, model, content_type, accept)
    server = _Server(spec.get("concurrency", 1))
    try:
        counts = _transform_files(spec, server, max_bytes, payload_mb, single, split, line_end)
    finally:
        server.close()
    json.dump(counts, open(spec["report"], "w"))


def _transform_files(spec, server, max_bytes, payload_mb, single, split, line_end):
    counts = {}
    for src, dst in spec["files"]:
        with open(src, "rb") as fh:
            data = fh.read()
        if split == "None":
            if max_bytes and len(data) > max_bytes:
                raise ValueError(f"{os.path.basename(src)}: {len(data)} bytes exceed MaxPayloadInMB ({payload_mb:g} MB); "
                                 "with SplitType None the whole object is one request")
            groups = [(data, None)]
        elif split == "Line":
            groups = batches(data, max_bytes, single)
        else:
            raise ValueError(f"SplitType {split!r} is not supported locally (Line or None)")
        tmp = dst + ".tmp"
        n_in = n_out = 0
        with open(tmp, "wb") as out:
            for result, n_rec in server.responses(groups):
                if n_rec is not None:
                    # Stricter than AWS, which assembles whatever comes back: one output line per input record.
                    produced = sum(1 for line in result.split(b"\n") if line.strip())
                    if produced != n_rec:
                        raise ValueError(f"{os.path.basename(src)}: a request of {n_rec} record(s) produced "
                                         f"{produced} output record(s)")
                    n_in += n_rec
                    n_out += produced
                out.write(result)
                out.write(line_end)
        os.replace(tmp, dst)
        counts[os.path.basename(src)] = {"records_in": n_in, "records_out": n_out}
    return counts


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception as exc:  # the runtime reads this like a container's failure message
        traceback.print_exc()
        spec = json.load(open(sys.argv[1]))
        with open(spec["failure_file"], "w") as fh:
            fh.write(f"ClientError: {type(exc).__name__}: {exc}"[:1024])
        sys.exit(1)
