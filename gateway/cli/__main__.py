"""`python -m gateway.cli`: the `brukarvakt` command without an installed entry point."""

import sys

from gateway.cli import main

sys.exit(main())
