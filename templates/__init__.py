# The digest templates ship inside the package as `daemon.templates` (see pyproject.toml).
