"""The reference for scripts/benchmark_serving.py: a bootcamp-style FastAPI fare API.

What a first deployment usually looks like: uvicorn, the fitted scikit-learn pipeline loaded
with joblib at start-up, a pandas DataFrame built per request. Serve it with

    PIPELINE_PATH=models/pipeline.joblib uvicorn scripts.reference.bootcamp_fastapi:app --port 8000
"""

import os

import joblib
import pandas as pd
from fastapi import FastAPI

app = FastAPI()
app.state.model = joblib.load(os.environ.get("PIPELINE_PATH", "models/pipeline.joblib"))


@app.get("/")
def root() -> dict:
    return {"greeting": "Hello"}


@app.get("/predict")
def predict(pickup_datetime: str, pickup_longitude: float, pickup_latitude: float, dropoff_longitude: float,
            dropoff_latitude: float, passenger_count: int) -> dict:
    ride = pd.DataFrame({
        "pickup_datetime": [pd.Timestamp(pickup_datetime, tz="US/Eastern")],
        "pickup_longitude": [pickup_longitude], "pickup_latitude": [pickup_latitude],
        "dropoff_longitude": [dropoff_longitude], "dropoff_latitude": [dropoff_latitude],
        "passenger_count": [passenger_count],
    })
    return {"fare": float(app.state.model.predict(ride)[0])}
