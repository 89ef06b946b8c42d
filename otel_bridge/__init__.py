"""otel-bridge: LAO run sockets in, OpenTelemetry traces and Prometheus metrics out."""

__version__ = "0.1.0"
