"""`python -m paperdigest` is the `paperdigest` command."""

import sys

from paperdigest.cli import console

if __name__ == "__main__":
    sys.exit(console())
