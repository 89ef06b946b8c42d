"""Where the engine's outputs go: export queues, OTLP, files, Prometheus metrics."""
