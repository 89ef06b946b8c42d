#!/usr/bin/env bash
# Installs what the test-suite needs outside the venv, idempotently:
#   - Debian packages: prometheus (prometheus + promtool) for the metrics tests, and
#     podman buildah mmdebstrap uidmap fuse-overlayfs for the container-image build;
#   - the pinned Go tools (jaeger, helm, otelcol) via tools/build.sh into .tools/bin/
# Runs as root without stdin (CI); a developer can run it with sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(prometheus podman buildah mmdebstrap uidmap fuse-overlayfs)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        echo "==> apt: $pkg already installed"
    else
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -gt 0 && $(id -u) -ne 0 ]]; then
    case "${CI:-}" in
        ""|0|false|no)
            # A developer without root still gets a test run: the tests that need these
            # binaries are skipped (and say so); CI (CI=true) fails on them instead.
            echo "install-system.sh: not root, so not installing ${missing[*]}; the tests" \
                "that need them will be skipped (run 'sudo .ci/install-system.sh' to have them)" >&2
            missing=()
            ;;
        *)
            echo "install-system.sh: need root to install: ${missing[*]}" >&2
            exit 1
            ;;
    esac
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    log="$(mktemp -t install-system.XXXXXX.log)"
    echo "==> apt-get update"
    if ! apt-get update -qq >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    # --no-install-recommends: prometheus would pull prometheus-node-exporter (a daemon)
    # and podman's recommends pull systemd via dbus-user-session; neither is needed here.
    echo "==> apt-get install --no-install-recommends ${missing[*]}"
    if ! apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    rm -f "$log"
    echo "==> apt: installed ${missing[*]}"
fi

# Debian starts a prometheus service on :9090 when it can; the tests start their own
# on free ports, so a system one only wastes memory (no-op without systemd).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    echo "==> stopping the system prometheus service (tests run their own)"
    systemctl stop prometheus || true
fi

echo "==> $(/usr/bin/prometheus --version 2>&1 | head -n1)"

echo "==> tools/build.sh"
bash "$ROOT/tools/build.sh"
