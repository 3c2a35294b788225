"""`python -m taxifare ...` runs the command-line interface."""

import sys

from taxifare.cli import main

sys.exit(main())
