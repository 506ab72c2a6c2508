"""The store: its tables (tables.py, SQLAlchemy Core), the schema's migrations (migrate.py, migrations/),
the engine (engine.py: SQLite with WAL, or PostgreSQL) and the bulk queries (queries/)."""
