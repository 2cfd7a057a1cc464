"""`python -m structgen` runs the command-line interface (see structgen/cli.py)."""
import sys

from structgen.cli import main

sys.exit(main())
