#!/usr/bin/env bash
# Run jobs of .gitlab-ci.yml that need no AWS access on this machine with gitlab-ci-local
# (shell executor: no container images are pulled, so it works offline once installed).
#
#   tools/ci_local.sh                 # runs the lambda-package job
#   tools/ci_local.sh lambda-package test
#
# Needs: npm (registry access for the first install; `make .ci-tools/.installed` installs the same
# pinned gitlab-ci-local that the CI tests use), Node.js >= 20, and rsync to run jobs (Debian:
# apt-get install rsync). Jobs that need AWS (build-pipelines, init/plan/apply/destroy) cannot run locally.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GCL_VERSION="$(sed -n 's/^GCL_VERSION *:= *//p' "$ROOT/Makefile")"
TOOLS_DIR="$ROOT/.ci-tools"
STATE_DIR="${CI_LOCAL_STATE_DIR:-${TMPDIR:-/tmp}/mlops-gitlab-ci-local}"

command -v rsync >/dev/null || { echo "ci_local.sh: rsync is required (apt-get install rsync)" >&2; exit 2; }
command -v npm >/dev/null || { echo "ci_local.sh: npm is required" >&2; exit 2; }

mkdir -p "$TOOLS_DIR" "$STATE_DIR"
if [ ! -x "$TOOLS_DIR/node_modules/.bin/gitlab-ci-local" ]; then
  npm install --prefix "$TOOLS_DIR" --no-audit --no-fund "gitlab-ci-local@${GCL_VERSION}" >/dev/null
fi

cd "$ROOT"
# gitlab-ci-local joins --state-dir to the working directory: pass it relative.
state_rel="$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1]))' "$STATE_DIR")"
jobs=("$@")
[ ${#jobs[@]} -gt 0 ] || jobs=(lambda-package)
exec "$TOOLS_DIR/node_modules/.bin/gitlab-ci-local" --force-shell-executor --state-dir "$state_rel" "${jobs[@]}"
