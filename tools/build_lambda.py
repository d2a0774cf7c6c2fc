"""Build the Lambda deployment package reproducibly.

Same sources -> byte-identical zip (sorted entries, fixed timestamps and permissions), so the
source_code_hash Terraform computes changes only when the code changes.

    python tools/build_lambda.py [--src code/lambda_function] [--out build/lambda_function.zip]
    pip install --no-deps $(python tools/build_lambda.py --print-requirements)   # a bare environment first

The vendored libraries are copied from the running environment and must be installed there at exactly the
versions requirements.lock pins (the CI job installs them first, as the line above; the project's .venv has
them): any other version stops the build with a message saying what to install.
"""

import argparse
import base64
import hashlib
import importlib.metadata
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # earliest date a zip entry can hold
INCLUDE_SUFFIXES = (".py", ".json")
# Libraries the handlers import that the Lambda Python runtime does not ship (boto3, botocore and jmespath
# it does): copied from this environment, whose versions pyproject.toml pins.
VENDORED = ("aws_lambda_powertools", "typing_extensions")
LOCK = ROOT / "requirements.lock"


def pinned_requirements(lock=LOCK):
    """`name==version` of each vendored library, as requirements.lock pins it."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read_text(), re.M))
    pins = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}
    out = []
    for module in VENDORED:
        dist = module.replace("_", "-")
        if dist not in pins:
            raise SystemExit(f"build_lambda: {lock.name} pins no {dist}")
        out.append(f"{dist}=={pins[dist]}")
    return out


def check_installed(requirements):
    """Stop unless each vendored library is installed at its pinned version (what goes into the zip)."""
    wrong = []
    for req in requirements:
        dist, version = req.split("==")
        try:
            have = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            have = None
        if have != version:
            wrong.append(f"{dist} {have or 'not installed'} (lock: {version})")
    if wrong:
        raise SystemExit(f"build_lambda: {', '.join(wrong)}; install them first: "
                         "pip install --no-deps $(python tools/build_lambda.py --print-requirements)")


def vendored_files():
    """(path inside the zip, file) for each vendored package or module."""
    import importlib.util
    out = []
    for name in VENDORED:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise SystemExit(f"build_lambda: {name} is not installed (make .venv/.installed)")
        if spec.submodule_search_locations:
            root = Path(next(iter(spec.submodule_search_locations)))
            out += [(f"{name}/{p.relative_to(root).as_posix()}", p) for p in collect(root)]
        else:
            out.append((Path(spec.origin).name, Path(spec.origin)))
    return out


def collect(src):
    files = sorted(
        p for p in src.rglob("*")
        if p.is_file() and p.suffix in INCLUDE_SUFFIXES and "__pycache__" not in p.parts
    )
    if not files:
        raise SystemExit(f"build_lambda: no {'/'.join(INCLUDE_SUFFIXES)} files under {src}")
    return files


def build(src, out):
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        entries = [(p.relative_to(src).as_posix(), p) for p in collect(src)] + vendored_files()
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.external_attr = (0o100644 << 16)  # regular file, rw-r--r--
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the build host
            zf.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp.replace(out)
    digest = hashlib.sha256(out.read_bytes()).digest()
    return base64.b64encode(digest).decode()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT / "code" / "lambda_function")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda_function.zip")
    parser.add_argument("--print-requirements", action="store_true",
                        help="print the vendored libraries as requirements.lock pins them, and exit")
    args = parser.parse_args(argv)
    requirements = pinned_requirements()
    if args.print_requirements:
        print(" ".join(requirements))
        return 0
    check_installed(requirements)
    if not args.src.is_dir():
        raise SystemExit(f"build_lambda: source directory {args.src} does not exist")
    b64 = build(args.src, args.out)
    print(f"{args.out} base64(sha256)={b64}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
