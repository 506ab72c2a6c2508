# The digest templates ship inside the package as `paperdigest.templates` (see pyproject.toml).
