"""A job's environment as bare as its image: no Docker here, so each image is a PATH of the commands the image
ships (symlinks to this machine's copies), a fresh HOME, and for the python images a fresh Python with nothing
installed (a new venv of this machine's CPython, which has the image's version and pip).

What an image lacks, its jobs lack here: python:*-slim has no git, make, compiler or curl; hashicorp/terraform
has no Python (https://hub.docker.com/_/python, https://hub.docker.com/r/hashicorp/terraform). Two leniencies
remain and are stated: the shell is this machine's bash (gitlab-ci-local starts every job with `bash`, the
terraform image runs busybox `sh`: its scripts here must stay POSIX, which tests/e2e/test_gitlab_pipeline.py checks
with `sh -n`), and the CPU architecture is this machine's.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# A Debian (slim) base: coreutils, grep, sed, tar, gzip, find, bash.
DEBIAN_SLIM = ("bash", "sh", "env", "cat", "ls", "mkdir", "rm", "cp", "mv", "ln", "chmod", "touch", "printf", "echo",
               "grep", "sed", "tar", "gzip", "find", "head", "tail", "sort", "uniq", "tee", "wc", "tr", "cut",
               "xargs", "dirname", "basename", "readlink", "realpath", "mktemp", "date", "sleep", "id", "uname",
               "true", "false", "test", "[", "expr", "stat", "du", "df", "which", "awk")
# The full python image adds the build tools and VCS (buildpack-deps).
DEBIAN_FULL = DEBIAN_SLIM + ("git", "make", "gcc", "g++", "cc", "curl", "wget", "patch", "unzip", "xz", "apt-get",
                             "dpkg", "ssh")
# hashicorp/terraform is Alpine with terraform, git and openssh on busybox.
ALPINE_TERRAFORM = ("sh", "bash", "env", "cat", "ls", "mkdir", "rm", "cp", "mv", "ln", "chmod", "touch", "printf",
                    "echo", "grep", "sed", "tar", "gzip", "find", "head", "tail", "sort", "tee", "wc", "tr", "cut",
                    "xargs", "dirname", "basename", "mktemp", "date", "sleep", "id", "uname", "true", "false",
                    "test", "[", "expr", "stat", "which", "awk", "git", "ssh", "terraform")


class ImageError(RuntimeError):
    pass


def image_kind(image: str) -> str:
    """python-slim, python or terraform, from the image reference a job names."""
    name = image.split("/")[-1]
    if name.startswith("python:"):
        return "python-slim" if "slim" in name else "python"
    if name.startswith("terraform:"):
        return "terraform"
    raise ImageError(f"image {image!r}: no offline environment for it (python:* and hashicorp/terraform:* exist)")


def _python_version(image: str) -> str | None:
    m = re.search(r"python:(\d+\.\d+(?:\.\d+)?)", image)
    return m.group(1) if m else None


def _link(bin_dir: Path, names: tuple[str, ...], search_path: str) -> None:
    for name in names:
        found = shutil.which(name, path=search_path)
        if found and not (bin_dir / name).exists():
            (bin_dir / name).symlink_to(found)


def prepare(image: str, job_dir: Path, host_path: str | None = None) -> dict:
    """Make job_dir/{bin,home[,python]} for one job and return the environment variables of the image."""
    kind = image_kind(image)
    host_path = host_path or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    bin_dir, home = job_dir / "bin", job_dir / "home"
    shutil.rmtree(job_dir, ignore_errors=True)
    bin_dir.mkdir(parents=True)
    home.mkdir()
    if kind.startswith("python"):
        want = _python_version(image)
        have = ".".join(map(str, sys.version_info[:3]))
        if want and not have.startswith(want):
            raise ImageError(f"image {image}: needs Python {want}, this machine runs {have}")
        venv = job_dir / "python"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        _link(bin_dir, DEBIAN_FULL if kind == "python" else DEBIAN_SLIM, host_path)
        # The image's Python is the system one, its scripts dir (/usr/local/bin there) first on PATH: what
        # pip or `uv pip install --python python3` installs lands in it and its commands are found.
        return {"PATH": f"{venv / 'bin'}:{bin_dir}", "HOME": str(home), "LANG": "C.UTF-8", "VIRTUAL_ENV": str(venv)}
    _link(bin_dir, ALPINE_TERRAFORM, host_path)
    if not (bin_dir / "terraform").exists():
        raise ImageError("the terraform binary is not on this machine's PATH")
    return {"PATH": str(bin_dir), "HOME": str(home), "LANG": "C.UTF-8"}


def terraform_version() -> str | None:
    exe = shutil.which("terraform")
    if not exe:
        return None
    out = subprocess.run([exe, "version"], capture_output=True, text=True).stdout
    m = re.search(r"Terraform v(\S+)", out)
    return m.group(1) if m else None


def node() -> str | None:
    return shutil.which("node", path=os.environ.get("PATH"))
