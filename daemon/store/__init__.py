"""The store: SQLModel tables (tables.py), the schema's migrations (migrate.py, migrations/),
the engine (engine.py: SQLite with WAL, or PostgreSQL), the bulk queries (queries/) and the reads
of `status` (status.py: on the tables reflected from the store, so that `status` starts without
SQLModel)."""
