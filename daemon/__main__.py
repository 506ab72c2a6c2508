"""`python -m paperdigest` is the `paperdigest` command."""

import sys

from paperdigest.cli import main

if __name__ == "__main__":
    sys.exit(main())
