# Shared by the image scripts (sourced, not run): where images are stored and how podman
# and buildah are called. Storage is private to this project: the vfs driver (works
# without fuse or overlay support, e.g. inside another container) under $IMAGE_CACHE.
#
#   OTEL_BRIDGE_IMAGE_CACHE   cache directory (default .tools/image): base tarballs,
#                             container storage; point it outside the work tree to share
#                             it between clones (CI clones afresh each run).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMAGE_CACHE="${OTEL_BRIDGE_IMAGE_CACHE:-$ROOT/.tools/image}"
STORAGE_OPTS=(--root "$IMAGE_CACHE/storage" --runroot "$IMAGE_CACHE/run" --storage-driver vfs)

podman_() { podman "${STORAGE_OPTS[@]}" "$@"; }
buildah_() { buildah "${STORAGE_OPTS[@]}" "$@"; }

need() {
    local tool
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "$(basename "$0"): '$tool' not found (bash .ci/install-system.sh installs it)" >&2
            exit 1
        fi
    done
}

log() { echo "==> $*" >&2; }
