"""Durable state in ``state_dir``: an SQLite database of open runs, followed runs and spans."""
