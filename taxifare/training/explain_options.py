"""What `taxifare explain` takes, without its imports: the CLI's parser reads this at once.

(taxifare.training.explain_command explains; importing it loads numpy, pandas and scikit-learn.)
"""

import argparse

DESCRIPTION = """Why each fare, as a table: the base and what each group of features adds, to the cent.

The same breakdowns the API answers with explain=1. Rides come from --ride, a query string as GET
/predict takes it (the pickup time on New York's clock, or UTC with a " UTC" suffix), or from CSVs
in the Kaggle schema (UTC times, as the training data; no fare column needed)."""

EXAMPLE_RIDE = ("pickup_datetime=2013-07-06 17:18:00&pickup_longitude=-73.950655&pickup_latitude=40.783282"
                "&dropoff_longitude=-73.984365&dropoff_latitude=40.769802&passenger_count=1")


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's own options (the CLI adds --limit)."""
    parser.add_argument("--model", required=True, metavar="PATH_OR_URI",
                        help="a model.joblib or pipeline.joblib, local or gs://")
    rides = parser.add_mutually_exclusive_group(required=True)
    rides.add_argument("--ride", action="append", metavar="QUERY",
                       help=f"a ride as GET /predict's query string, e.g. '{EXAMPLE_RIDE}' (the time on New York's "
                            "clock, or UTC with ' UTC'); repeat for several")
    rides.add_argument("--data", action="append", metavar="PATH_OR_URI",
                       help="a CSV of rides in the Kaggle schema (UTC times; no fare needed), local or gs://; repeat "
                            "for several")
    parser.add_argument("--features", action="store_true",
                        help="also list what each engineered feature adds to each fare, most first")
