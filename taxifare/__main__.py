"""`python -m taxifare ...` runs the command-line interface."""

import sys

from taxifare.training.cli import main

sys.exit(main())
