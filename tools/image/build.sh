#!/usr/bin/env bash
# Builds the otel-bridge image with buildah (vfs storage, chroot isolation, host network)
# from the repo's Dockerfile (docker format, which keeps
# HEALTHCHECK), on the base made by tools/image/base.sh unless --base is given.
#
#   tools/image/build.sh [--base IMAGE] [--tag NAME] [--no-cache]
#
# The machine's CA bundle (TLS-intercepting proxies) reaches pip as the build secret `ca`,
# mounted in the one step that downloads: the hash-checked install of requirements.lock.
# Layers are cached in the project's container storage (see lib.sh): a rebuild with
# unchanged inputs takes seconds, one after a code change only reinstalls the bridge (the
# dependencies are reinstalled only when requirements.lock changes).
# Prints `image=NAME`, `root=DIR`, `runroot=DIR` on stdout (for the tests); logs on stderr.
set -euo pipefail
# shellcheck source=tools/image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

base=""
tag="localhost/otel-bridge:dev"
cache=(--layers)
while [[ $# -gt 0 ]]; do
    case "$1" in
        --base) base="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        --no-cache) cache=(--layers --no-cache); shift ;;
        -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
need buildah

[[ -n "$base" ]] || base="$(bash "$ROOT/tools/image/base.sh")"
CA_BUNDLE="${OTEL_BRIDGE_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}"
secret=()
[[ -s "$CA_BUNDLE" ]] && secret=(--secret "id=ca,src=$CA_BUNDLE")

# One source for the version: otel_bridge/__init__.py (pyproject reads it too).
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/otel_bridge/__init__.py" | head -n1)"
revision="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain -- Dockerfile .dockerignore pyproject.toml requirements.lock README.md LICENSE otel_bridge 2>/dev/null)" ]]; then
    revision="$revision-dirty"
fi
# The commit's time, not the clock's: rebuilding one commit gives the same labels.
created="$(git -C "$ROOT" log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || true)"
created="${created:-1970-01-01T00:00:00Z}"
source_url="$(git -C "$ROOT" remote get-url origin 2>/dev/null || true)"
case "$source_url" in http*://*) ;; *) source_url="" ;; esac

# Nothing to do when the inputs are those of the image already tagged: the context files,
# the Dockerfile, the base image and the build arguments.
inputs="$({
    cd "$ROOT"
    find Dockerfile .dockerignore pyproject.toml requirements.lock README.md LICENSE otel_bridge -type f \
        ! -path '*/__pycache__/*' ! -name '*.py[cod]' -print0 | sort -z | xargs -0 sha256sum
    podman_ image inspect --format '{{.Id}}' "$base"
    echo "$version|$revision|$created|$source_url|${#secret[@]}"
} | sha256sum | cut -d' ' -f1)"
stamp="$IMAGE_CACHE/build-$(echo "$tag" | tr '/:' '__').stamp"
current="$(podman_ image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
if [[ ${#cache[@]} -eq 1 && -n "$current" && -f "$stamp" && "$(cat "$stamp")" == "$inputs $current" ]]; then
    log "$tag is up to date (same inputs)"
    echo "image=$tag"
    echo "root=$IMAGE_CACHE/storage"
    echo "runroot=$IMAGE_CACHE/run"
    exit 0
fi

common=(
    "${cache[@]}" --isolation chroot --network host --pull=never --format docker
    "${secret[@]}" --build-arg "BASE=$base" --file "$ROOT/Dockerfile"
)
log "buildah build $tag on $base"
start=$SECONDS
# The build stage gets a tag of its own so that pruning the dangling images of earlier
# builds (vfs stores each layer whole) keeps its layers (and those of deps) cached.
buildah_ build "${common[@]}" --target build --tag localhost/otel-bridge-build:cache "$ROOT" >&2
TZ=UTC buildah_ build "${common[@]}" \
    --build-arg "VERSION=$version" \
    --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$created" \
    --build-arg "SOURCE=$source_url" \
    --tag "$tag" "$ROOT" >&2
podman_ image prune --force >/dev/null
echo "$inputs $(podman_ image inspect --format '{{.Id}}' "$tag")" >"$stamp"
log "built $tag in $((SECONDS - start))s ($(du -sh "$IMAGE_CACHE/storage" | cut -f1) of image storage)"
echo "image=$tag"
echo "root=$IMAGE_CACHE/storage"
echo "runroot=$IMAGE_CACHE/run"
