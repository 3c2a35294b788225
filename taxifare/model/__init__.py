"""The fare model as it runs in the cloud: numpy only.

Feature maths (geometry, New York local time), compiled tree ensembles, the FareModel that
combines them, and safe loading from a local path or Cloud Storage. Both the HTTP function
(taxifare.serving) and training (taxifare.training) stand on this layer; it imports neither,
nor scikit-learn, scipy or pandas (tests/test_layers.py keeps it so).
"""
