#!/usr/bin/env bash
# Copies the Grafana dashboards (dashboards/*.json) and the alert rules
# (dashboards/alerts/otel-bridge-rules.yaml) into the Helm chart, which cannot read files
# outside itself: helm/otel-bridge/files/. tests/test_helm_chart.py fails when the copies
# differ from the sources; run this after changing them.
#
#   tools/image/sync-chart-files.sh          copy (removing copies whose source is gone)
#   tools/image/sync-chart-files.sh --check  only report differences (exit 1 if any)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FILES="$ROOT/helm/otel-bridge/files"
check=0
[[ "${1:-}" == "--check" ]] && check=1

# source|copy pairs
pairs=()
for src in "$ROOT"/dashboards/*.json; do
    [[ -e "$src" ]] && pairs+=("$src|$FILES/dashboards/$(basename "$src")")
done
rules="$ROOT/dashboards/alerts/otel-bridge-rules.yaml"
[[ -e "$rules" ]] && pairs+=("$rules|$FILES/alerts/otel-bridge-rules.yaml")

status=0
wanted=()
for pair in "${pairs[@]}"; do
    src="${pair%%|*}" dst="${pair#*|}"
    wanted+=("$dst")
    if ! cmp -s "$src" "$dst"; then
        if [[ $check -eq 1 ]]; then
            echo "differs: ${dst#"$ROOT"/} (from ${src#"$ROOT"/})"
            status=1
        else
            mkdir -p "$(dirname "$dst")"
            cp "$src" "$dst"
            echo "synced ${dst#"$ROOT"/}"
        fi
    fi
done
# Copies whose source no longer exists.
while IFS= read -r -d '' dst; do
    keep=0
    for w in "${wanted[@]}"; do [[ "$w" == "$dst" ]] && keep=1; done
    [[ $keep -eq 1 ]] && continue
    if [[ $check -eq 1 ]]; then
        echo "stale: ${dst#"$ROOT"/}"
        status=1
    else
        rm -f "$dst"
        echo "removed ${dst#"$ROOT"/}"
    fi
done < <(find "$FILES" -type f \( -name '*.json' -o -name '*.yaml' \) -print0 2>/dev/null)
exit $status
