"""Generate the Grafana dashboards in this directory from code (grafana-foundation-sdk).

    python dashboards/generate.py          # rewrite lao-workflows.json, otel-bridge-health.json
    python dashboards/generate.py --check  # exit 1 if the committed JSON differs (CI, tests)

Every PromQL expression is written once, in ``gen/``. Variables: ``datasource`` (the Prometheus
data source), ``flow_name`` and ``task_name`` (multi-select, "All" = ``.*``), ``traces``
(a Tempo data source variable, which every trace link opens) and, on the health dashboard,
``instance``. Exemplars are on for both duration histograms; a field override on
``trace_id`` turns each exemplar into a link to the trace in ``$traces``, and flows link to
the TraceQL search of their runs. The two dashboards link to each other.

This file is the command line; the dashboards are built in the package ``gen/`` beside it
(``gen/workflows.py``, ``gen/health.py`` and the builders they share).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # ``gen`` sits beside this file, also when loaded by path
    sys.path.insert(0, str(HERE))

from gen.output import DASHBOARDS, render  # noqa: E402

__all__ = ["DASHBOARDS", "HERE", "main", "render"]


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards (or, with --check, report drift and exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--out", type=Path, default=HERE, help="directory (default: here)")
    args = parser.parse_args(argv)
    drift = False
    for name in DASHBOARDS:
        path = args.out / name
        text = render(name)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if args.check:
            if old != text:
                drift = True
                sys.stdout.writelines(
                    difflib.unified_diff(
                        old.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        f"{path} (committed)",
                        f"{path} (generated)",
                    )
                )
        elif old != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if drift:
        print("dashboards differ from the generator: run python dashboards/generate.py")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
