"""The README, /openapi.json and /docs show one example ride, and its answers are what `make run`'s model says.

`make run` trains on both shared files with seed 0, as the session's `trained_model` fixture does, so
the fixture's answers are make run's. When a new recipe or new data moves them, these tests fail
and print the values to put in taxifare/serving/examples.py (the README's are checked against it).
"""

import re
from pathlib import Path
from urllib.parse import quote, urlencode

from taxifare.serving import examples

README = Path(__file__).resolve().parents[1] / "README.md"


def answer(client, ride: dict, **options) -> dict:
    response = client.get("/predict?" + urlencode({**ride, **options}))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_the_example_answers_are_make_runs_models(client):
    fare = answer(client, examples.EXAMPLE_RIDE)["fare"]
    with_range = answer(client, examples.EXAMPLE_RIDE, range=80)
    explained = answer(client, examples.EXAMPLE_RIDE, explain=1)
    airport = answer(client, examples.AIRPORT_RIDE)["fare"]
    measured = {"EXAMPLE_FARE": fare, "EXAMPLE_RANGE": with_range["range"], "EXAMPLE_BREAKDOWN": explained["breakdown"],
                "AIRPORT_FARE": airport}
    shown = {name: getattr(examples, name) for name in measured}
    assert shown == measured, f"the model answers {measured}: put these in taxifare/serving/examples.py"
    assert with_range["fare"] == explained["fare"] == fare


def test_the_readme_shows_the_same_ride_and_answers():
    text = README.read_text()
    ride = examples.EXAMPLE_RIDE
    assert urlencode(ride, quote_via=quote, safe=":") in text  # the quickstart's curl asks for the example ride
    fares = {float(value) for value in re.findall(r'"fare": (\d+\.\d+)', text)}
    assert fares == {examples.EXAMPLE_FARE}
    low_high = set(re.findall(r'"low": (\d+\.\d+), "high": (\d+\.\d+)', text))
    assert low_high == {(f"{examples.EXAMPLE_RANGE['low']:.2f}", f"{examples.EXAMPLE_RANGE['high']:.2f}")}


def test_the_served_openapi_examples_are_the_models_answers(client):
    """Each example request of the served /openapi.json, sent to the function, gets the example answer shown."""
    spec = client.get("/openapi.json").get_json()
    post = spec["paths"]["/predict"]["post"]
    requests = {name: example["value"] for name, example in post["requestBody"]["content"]["application/json"]
                ["examples"].items()}
    shown = {name: example["value"] for name, example in post["responses"]["200"]["content"]["application/json"]
             ["examples"].items()}
    answers = {name: client.post("/predict", json=body).get_json() for name, body in requests.items()}
    airport_with_range = answer(client, examples.AIRPORT_RIDE, range=80)
    assert answers == {"one ride": shown["fare"], "one ride with a range": shown["fare with range"],
                       "one ride with its breakdown": shown["fare with breakdown"],
                       "instances": shown["predictions"], "bigquery": shown["replies"],
                       "instances with ranges": {"predictions": [shown["fare with range"], airport_with_range]}}
    get = spec["paths"]["/predict"]["get"]
    ride = {parameter["name"]: parameter["example"] for parameter in get["parameters"]}
    coverage, explain = ride.pop("range"), ride.pop("explain")
    get_examples = get["responses"]["200"]["content"]["application/json"]["examples"]
    assert answer(client, ride) == get_examples["fare"]["value"]
    assert answer(client, ride, range=coverage) == get_examples["fare with range"]["value"]
    assert answer(client, ride, explain=explain) == get_examples["fare with breakdown"]["value"]
