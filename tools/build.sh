#!/usr/bin/env bash
# Builds the external servers/CLIs the test-suite needs into .tools/bin/, from the
# versions pinned in tools/<name>/go.mod (Go 1.24+ `tool` directives; the Collector's
# tools/collector/main.go lists its components itself).
#
#   tools/build.sh            build what is missing or out of date
#   tools/build.sh --force    rebuild everything
#   tools/build.sh jaeger     only the named tools (jaeger, helm, otelcol)
#
# A build is skipped when .tools/bin/<name> exists and .tools/stamps/<name> records the
# same hash of go.mod, go.sum, any *.go beside them, `go version`, -ldflags and -tags. Go's
# own GOMODCACHE and GOCACHE (defaults) make a rebuild after a pin change incremental.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
STAMP_DIR="$ROOT/.tools/stamps"

# name | directory under tools/ | module path | command package
TOOLS=(
    "jaeger|jaeger|github.com/jaegertracing/jaeger|github.com/jaegertracing/jaeger/cmd/jaeger"
    "helm|helm|helm.sh/helm/v3|helm.sh/helm/v3/cmd/helm"
    "otelcol|collector|go.opentelemetry.io/collector/otelcol|."
)

force=0
wanted=()
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h | --help)
            sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "build.sh: unknown option $arg" >&2
            exit 2
            ;;
        *) wanted+=("$arg") ;;
    esac
done

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: 'go' not found on PATH (Go >= 1.24 is needed for go.mod tool directives)" >&2
    exit 1
fi

mkdir -p "$BIN_DIR" "$STAMP_DIR"
go_version="$(go version)"

# The pinned version of MODULE as recorded in DIR/go.mod.
pinned_version() {
    local dir="$1" module="$2"
    (cd "$dir" && go list -m -f '{{.Version}}' "$module")
}

# Version stamping as the upstream Makefiles do it (-s -w: no symbol table / DWARF).
ldflags_for() {
    local name="$1" dir="$2" version="$3" k8s major minor
    local flags="-s -w"
    case "$name" in
        jaeger)
            flags+=" -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$version"
            ;;
        helm)
            # helm derives its default Kubernetes version (Capabilities.KubeVersion and
            # the lint deprecation rules) from client-go: v0.M.N -> Kubernetes 1.M.
            k8s="$(cd "$dir" && go list -m -f '{{.Version}}' k8s.io/client-go)"
            k8s="${k8s#v}"
            major=$((${k8s%%.*} + 1))
            minor="$(echo "$k8s" | cut -d. -f2)"
            flags+=" -X helm.sh/helm/v3/internal/version.version=$version"
            flags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major"
            flags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
            flags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major"
            flags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
            ;;
    esac
    echo "$flags"
}

# Go build tags. The Collector's prometheus receiver brings every Prometheus service
# discovery (AWS, Azure, GCE, OpenStack, …: 220 more packages to compile, a 118 MB binary
# instead of 91 MB); keep static, file, http, DNS and Kubernetes discovery only.
tags_for() {
    case "$1" in
        otelcol) echo "remove_all_sd,enable_dns_sd,enable_kubernetes_sd" ;;
        *) echo "" ;;
    esac
}

stamp_of() {
    local dir="$1" ldflags="$2" sources
    # A tool with its own main package (the Collector) is pinned by its source too.
    sources=$(find "$dir" -maxdepth 1 -name '*.go' | LC_ALL=C sort)
    # shellcheck disable=SC2086 # file names without spaces, one word each
    { cat "$dir/go.mod" "$dir/go.sum" $sources; echo "$go_version"; echo "$ldflags"; } |
        sha256sum | cut -d' ' -f1
}

build_one() {
    local name="$1" sub="$2" module="$3" pkg="$4"
    local dir="$ROOT/tools/$sub"
    local out="$BIN_DIR/$name"
    local stamp_file="$STAMP_DIR/$name"
    local want_stamp have_stamp="" version ldflags tags start elapsed tmp

    version="$(pinned_version "$dir" "$module")"
    ldflags="$(ldflags_for "$name" "$dir" "$version")"
    tags="$(tags_for "$name")"
    want_stamp="$(stamp_of "$dir" "$ldflags${tags:+ -tags=$tags}")"
    [[ -f "$stamp_file" ]] && have_stamp="$(cat "$stamp_file")"

    if [[ $force -eq 0 && -x "$out" && "$have_stamp" == "$want_stamp" ]]; then
        echo "==> $name $version is up to date (.tools/bin/$name)"
        return 0
    fi

    if [[ -x "$out" ]]; then
        echo "==> rebuilding $name $version (pin, Go version or flags changed)…"
    else
        echo "==> building $name $version (first build takes several minutes)…"
    fi
    start=$SECONDS
    tmp="$out.tmp.$$"
    # -mod=readonly: go.mod/go.sum are complete (go mod tidy); a drift must fail, not be
    # silently rewritten. -buildvcs=false: the otel-bridge checkout's VCS state is
    # irrelevant to the tool (and a clone without commits would make the stamp fail).
    if ! (cd "$dir" && GOFLAGS="${GOFLAGS:-} -mod=readonly" \
        go build -trimpath -buildvcs=false -tags="$tags" -ldflags="$ldflags" -o "$tmp" "$pkg"); then
        rm -f "$tmp"
        echo "build.sh: building $name failed" >&2
        return 1
    fi
    mv -f "$tmp" "$out"
    echo "$want_stamp" >"$stamp_file"
    elapsed=$((SECONDS - start))
    echo "==> built $name $version in ${elapsed}s -> .tools/bin/$name"
}

total_start=$SECONDS
found_any=0
for entry in "${TOOLS[@]}"; do
    IFS='|' read -r name sub module pkg <<<"$entry"
    if [[ ${#wanted[@]} -gt 0 ]]; then
        match=0
        for w in "${wanted[@]}"; do [[ "$w" == "$name" ]] && match=1; done
        [[ $match -eq 1 ]] || continue
    fi
    found_any=1
    build_one "$name" "$sub" "$module" "$pkg"
done
if [[ $found_any -eq 0 ]]; then
    echo "build.sh: no tool named ${wanted[*]} (known: jaeger helm otelcol)" >&2
    exit 2
fi
echo "==> tools ready in $((SECONDS - total_start))s"
