"""The HTTP function (what main.py serves): parse, validate, predict, answer.

Runs in the cloud on every request, so it imports only the numpy model layer (taxifare.model),
Flask and functions-framework: never scikit-learn, scipy, pandas or taxifare.training.
"""
