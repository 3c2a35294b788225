"""Training on a laptop or in CI: load and clean rides, fit the scikit-learn pipeline, compile it.

Uses the whole scientific stack (scikit-learn, pandas). Its output, model.joblib, is the compiled
numpy-only FareModel the function serves; pipeline.joblib keeps the fitted scikit-learn pipeline.
"""
