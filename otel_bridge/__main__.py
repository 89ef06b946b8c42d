"""``python -m otel_bridge``: the ``otel-bridge`` command."""

import sys

from otel_bridge.cli import main

sys.exit(main())
