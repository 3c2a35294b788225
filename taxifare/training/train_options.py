"""What `taxifare train` defaults to, without its imports: the CLI's parser reads this at once.

(taxifare.training.train trains with the same defaults; importing it loads pandas and scikit-learn.)
"""

TEST_FRACTION = 0.2
"""Share of valid rides held out to score the model before the refit on all of them."""
