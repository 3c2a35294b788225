"""What `taxifare compare` takes and answers, without its imports: the CLI's parser reads these at once.

(taxifare.training.comparison does the comparing; importing it loads numpy, pandas and scikit-learn.)
"""

import enum

BOOTSTRAP_SAMPLES = 1000
DEFAULT_COVERAGE = 80


class Outcome(enum.IntEnum):
    """How a model did against the reference on all rides; the value is `compare`'s exit status."""

    BETTER = 0
    NO_DIFFERENCE = 3
    WORSE = 4
