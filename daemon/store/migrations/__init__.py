"""The store's schema as Alembic migrations: versions/ holds one revision per change."""
