"""The code the Grafana dashboards are generated from; ``dashboards/generate.py`` runs it.

``promql``: the data source, label selectors and PromQL helpers; ``panels``: panel and
query builders; ``links``: the links between the dashboards and to the traces in ``$traces``;
``variables``: template variables; ``workflows``, ``failures`` and ``flows``: the "LAO
workflows" dashboard; ``health`` and ``runtime``: the "otel-bridge health" dashboard;
``output``: the dashboards by file name and their JSON text.
"""
