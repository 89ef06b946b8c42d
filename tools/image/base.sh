#!/usr/bin/env bash
# Builds the image's base offline-friendly: a minimal Debian root with python3 and
# python3-venv made by mmdebstrap from Debian's own mirror, imported as a local image.
# No image registry is needed (CI cannot reach one).
#
#   tools/image/base.sh            print the base image's name, building it when missing
#   tools/image/base.sh --force    rebuild the tarball and re-import it
#
# The tarball $IMAGE_CACHE/base-<key>.tar and the image localhost/otel-bridge-base:<key>
# are keyed by a hash of this script, the suite, the mirrors, the packages and the
# mmdebstrap version, so a warm run costs nothing and any change of input rebuilds.
# The suite is the host's (VERSION_CODENAME in /etc/os-release) unless
# OTEL_BRIDGE_BASE_SUITE says otherwise. Needs root (mmdebstrap's root mode, podman).
set -euo pipefail
# shellcheck source=tools/image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

force=0
[[ "${1:-}" == "--force" ]] && force=1
need mmdebstrap podman

host_suite() {
    # shellcheck disable=SC1091
    (source /etc/os-release && [[ "${ID:-}" == debian ]] && echo "${VERSION_CODENAME:-}") || true
}
SUITE="${OTEL_BRIDGE_BASE_SUITE:-$(host_suite)}"
SUITE="${SUITE:-bookworm}"
MIRROR="${OTEL_BRIDGE_BASE_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${OTEL_BRIDGE_BASE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# What the Dockerfile needs of its base: python3 with venv, useradd, CA certificates
# (the bridge verifies wss:// upstreams) and netbase (/etc/services, /etc/protocols).
# libstdc++6: google-re2's wheel (the redaction prefilter) links against it.
PACKAGES="python3,python3-venv,ca-certificates,netbase,passwd,libstdc++6"
SOURCES=(
    "deb $MIRROR $SUITE main"
    "deb $MIRROR $SUITE-updates main"
    "deb $SECURITY_MIRROR $SUITE-security main"
)

key="$({
    cat "${BASH_SOURCE[0]}"
    echo "$SUITE|$PACKAGES"
    printf '%s\n' "${SOURCES[@]}"
    mmdebstrap --version
} | sha256sum | cut -c1-16)"
tarball="$IMAGE_CACHE/base-$key.tar"
image="localhost/otel-bridge-base:$key"
mkdir -p "$IMAGE_CACHE"

if [[ $force -eq 1 || ! -s "$tarball" ]]; then
    log "mmdebstrap $SUITE with $PACKAGES (about 30 s)…"
    start=$SECONDS
    tmp="$tarball.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    # essential + the packages; merged /usr without the usrmerge package (and its perl);
    # no docs, man pages or locales. mmdebstrap empties the apt lists and caches itself.
    mmlog="$IMAGE_CACHE/mmdebstrap.log"
    if ! mmdebstrap --variant=essential --include="$PACKAGES" --format=tar \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        "$SUITE" "$tmp" "${SOURCES[@]}" >"$mmlog" 2>&1; then
        cat "$mmlog" >&2
        echo "base.sh: mmdebstrap failed" >&2
        exit 1
    fi
    mv -f "$tmp" "$tarball"
    trap - EXIT
    log "base tarball $(du -h "$tarball" | cut -f1) in $((SECONDS - start))s -> $tarball"
    podman_ rmi --force "$image" >/dev/null 2>&1 || true
    # Older bases (other keys) are dead weight now.
    find "$IMAGE_CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "base-$key.tar" -delete
    for old in $(podman_ images --format '{{.Repository}}:{{.Tag}}' localhost/otel-bridge-base); do
        [[ "$old" == "$image" ]] || podman_ rmi --force "$old" >/dev/null 2>&1 || true
    done
fi

if ! podman_ image exists "$image"; then
    log "podman import $image"
    podman_ import --quiet \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        --message "mmdebstrap $SUITE: $PACKAGES" \
        "$tarball" "$image" >/dev/null
fi
echo "$image"
