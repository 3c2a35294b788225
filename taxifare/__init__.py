"""taxifare: predict New York City taxi fares with a scikit-learn model served as a Cloud Function."""

__version__ = "1.0.0"
