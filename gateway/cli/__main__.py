"""`python -m gateway.cli`: the `brukarvakt` command without an installed entry point."""

import sys

from gateway.cli import main

if __name__ == "__main__":
    sys.exit(main())
