"""What matters most overall: the mean absolute dollars each group of features adds to a model's fares.

The global view of the per-ride breakdowns (FareModel.explain, the API's explain=1): training records
it for the held-out rides in model.json, which /model serves; `taxifare compare` shows it for each
model on the rides it compares.
"""

from sklearn.ensemble import HistGradientBoostingRegressor

from taxifare.model.fare_model import FareModel
from taxifare.training.compile import compile_pipeline
from taxifare.training.ensemble import FareRegressor

METHOD = ("the mean absolute dollars each group of features adds to the fares of these rides: their breakdowns "
          "(path-dependent TreeSHAP, as /predict's explain=1 gives them) averaged; most first")


def explainable(predictor: object) -> FareModel | None:
    """The compiled model of a predictor that has one (a model.joblib, a taxifare pipeline.joblib); None otherwise."""
    if isinstance(predictor, FareModel):
        return predictor
    steps = getattr(predictor, "named_steps", {})
    if "features" in steps and isinstance(steps.get("regressor"), (FareRegressor, HistGradientBoostingRegressor)):
        return compile_pipeline(predictor)
    return None


def group_importance(model: FareModel, rides: object) -> dict[str, object]:
    """The global view on these rides, as model.json records it."""
    explanation = model.explain(rides)
    return {"rides": len(explanation.fares), "mean_abs_dollars": explanation.importance(), "method": METHOD}
