"""BigQuery sources against a real local BigQuery (bqemulator): the same rides, counts and model as the CSVs.

The shared rides are loaded once per session (tests/conftest.py) in the Kaggle schema, in another row
order, and shaped like an NYC TLC yellow-trip table (tolls apart, DATETIME pickups, NUMERIC
coordinates). What the emulator cannot do is said where it matters: it estimates 0 bytes for every
dry run and ignores locations, and its Storage Read API reads tables but not query results.
"""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from taxifare.model.schema import COORDINATE_COLUMNS, FARE, KEY, PASSENGER_COUNT, PICKUP_DATETIME
from taxifare.training.bigquery import BigQueryError, Estimate, check_cost, query_config
from taxifare.training.bigquery_options import BigQueryOptions
from taxifare.training.bigquery_sql import KAGGLE, TLC, SourceShapeError, detect_shape
from taxifare.training.cleaning import RULES, SWAPPED, clean_rides
from taxifare.training.data import Selection
from taxifare.training.sources import load_rides
from taxifare.training.train import CANONICAL_ORDER, train_and_save
from tests.bigquery_emulator import PROJECT, kaggle_csv

WINDOW = Selection(since=datetime(2012, 1, 1, tzinfo=UTC), until=datetime(2013, 1, 1, tzinfo=UTC))
"""A year of the shared rides (about 3,000): enough for a model, small enough to train three of them quickly."""


def canonical(rides: pd.DataFrame) -> pd.DataFrame:
    """Rides in the order training puts them in, with the datetime unit of the CSV path."""
    rides = rides.sort_values([*CANONICAL_ORDER, KEY], kind="stable", ignore_index=True)
    return rides.assign(**{PICKUP_DATETIME: rides[PICKUP_DATETIME].astype("datetime64[us, UTC]"),
                           KEY: rides[KEY].astype(object)})


@pytest.fixture(scope="module")
def csv_cleaned(shared_csvs):
    return load_rides(shared_csvs)


def test_every_rule_and_the_repair_mean_the_same_in_sql_as_in_pandas(bigquery, raw_rides):
    """Each predicate, compiled to GoogleSQL and run by BigQuery, marks exactly the rows its pandas mask marks,
    on the real rows and on edge values the files lack (NULL, NaN, -0.0, 1.5 passengers, bounds)."""
    edges = {  # None: NULL in SQL, NaN in pandas (as the CSV reader gives an empty cell)
        KEY: ["null", "nan", "minus-zero", "half", "low-bound", "high-bound", "placeholder"],
        FARE: [None, float("nan"), 5.0, 5.0, 2.5, 500.0, 7.0],
        "pickup_longitude": [-73.9, -73.9, -0.0, -73.9, -74.3, -72.9, -73.137393],
        "pickup_latitude": [40.7, float("nan"), 40.7, 40.7, 40.0, 42.0, 41.366138],
        "dropoff_longitude": [-73.9, -73.9, -73.9, -73.9, -74.3, -72.9, -73.9],
        "dropoff_latitude": [40.7, 40.7, 40.7, 40.7, 40.0, 42.0, 40.7],
        PASSENGER_COUNT: [1.0, 1.0, 1.0, 1.5, 1.0, 8.0, 1.0],
    }
    conditions = {rule.name: rule.broken for rule in RULES} | {f"swapped_{lon}": c for (lon, _), c in SWAPPED.items()}
    columns = ", ".join(f"{condition.sql()} AS {name}" for name, condition in conditions.items())
    floats = ", ".join(f"CAST({name} AS FLOAT64) AS {name}" for name in (*COORDINATE_COLUMNS, PASSENGER_COUNT))
    edge_rows = ", ".join(
        f"STRUCT('{key}' AS key, {_float(edges[FARE][i])} AS {FARE}, TIMESTAMP '2012-01-01' AS {PICKUP_DATETIME}, "
        + ", ".join(f"{_float(edges[name][i])} AS {name}" for name in (*COORDINATE_COLUMNS, PASSENGER_COUNT)) + ")"
        for i, key in enumerate(edges[KEY]))
    table = bigquery.tables.kaggle.removeprefix("bq://")
    sql = f"""WITH rides AS (
      SELECT key, fare_amount, pickup_datetime, {floats} FROM `{table}`
      UNION ALL SELECT * FROM UNNEST([{edge_rows}]))
    SELECT key, {columns} FROM rides"""
    in_sql = bigquery.client().query(sql).result().to_arrow(create_bqstorage_client=False).to_pandas().set_index(KEY).sort_index()
    edge_frame = pd.DataFrame(edges, dtype=object).assign(**{PICKUP_DATETIME: pd.Timestamp("2012-01-01", tz="UTC")})
    edge_frame = edge_frame.astype({name: "float64" for name in (FARE, *COORDINATE_COLUMNS, PASSENGER_COUNT)})
    rides = pd.concat([raw_rides, edge_frame], ignore_index=True).set_index(KEY, drop=False).sort_index()
    assert len(in_sql) == len(rides) == 20_476 + len(edges)
    for name, condition in conditions.items():
        np.testing.assert_array_equal(in_sql[name].to_numpy(dtype=bool), condition.mask(rides).to_numpy(), err_msg=name)
    assert in_sql.loc["nan", "missing_values"] and in_sql.loc["null", "missing_values"]
    assert in_sql.loc["minus-zero", "zero_coordinates"] and in_sql.loc["half", "passenger_count_out_of_range"]
    assert not in_sql.loc[["low-bound", "high-bound"], [rule.name for rule in RULES]].any().any()
    assert in_sql.loc["placeholder", "placeholder_coordinates"]


def _float(value: float | None) -> str:
    """A FLOAT64 literal of the value (None: NULL)."""
    return f"CAST({'NULL' if value is None else repr(str(value))} AS FLOAT64)"


@pytest.mark.parametrize("shape", ["kaggle", "tlc"])
def test_bigquery_gives_the_csv_rides_and_cleaning_counts(bigquery, csv_cleaned, shape):
    from_bq = load_rides([getattr(bigquery.tables, shape)])
    assert from_bq.counts == csv_cleaned.counts
    assert from_bq.rows_in == csv_cleaned.rows_in == 20_476
    ours, theirs = canonical(from_bq.rides), canonical(csv_cleaned.rides)
    if shape == "kaggle":
        pd.testing.assert_frame_equal(ours, theirs)
    else:  # no key in TLC tables; NUMERIC keeps 9 decimals of the coordinates; the emulator's NUMERIC -> FLOAT64
        assert ours[KEY].isna().all()  # is DuckDB's, which can be one unit in the last place off
        pd.testing.assert_frame_equal(ours.drop(columns=KEY), theirs.drop(columns=KEY), check_exact=False, rtol=0,
                                      atol=1e-9)


def train_small(cleaned, out) -> dict:
    """train_and_save on one thread (more spin against each other on this small, shared machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return train_and_save(cleaned, out).metadata


@pytest.fixture(scope="module")
def csv_models(shared_csvs, tmp_path_factory):
    """Models the CSV path trains on WINDOW: from the shared files, and from the same rides with the coordinates
    a NUMERIC column holds (the TLC-shaped table's)."""
    numeric = tmp_path_factory.mktemp("numeric") / "rides.csv"
    numeric.write_bytes(kaggle_csv(shared_csvs, numeric_points=True))
    models = {}
    for shape, sources in (("kaggle", shared_csvs), ("tlc", [str(numeric)])):
        models[shape] = tmp_path_factory.mktemp(f"csv-{shape}")
        train_small(load_rides(sources, WINDOW), models[shape])
    return models


@pytest.mark.parametrize("shape", ["kaggle", "tlc"])
def test_bigquery_trains_the_csv_model(bigquery, csv_models, valid_rides, tmp_path, shape):
    """The same window of rides from either table shape trains the model the CSV path trains on those rides:
    fares and ranges equal to 1e-9."""
    from taxifare.model import loading

    metadata = train_small(load_rides([getattr(bigquery.tables, shape)], WINDOW), tmp_path)
    assert metadata["data"]["cleaning"] == _json(csv_models[shape])["data"]["cleaning"]
    assert metadata["data"]["rows_read"] == _json(csv_models[shape])["data"]["rows_read"] > 2_000
    assert metadata["baselines"] == _json(csv_models[shape])["baselines"]
    ours, theirs = (loading.loads((folder / "model.joblib").read_bytes()) for folder in (tmp_path, csv_models[shape]))
    rides = valid_rides.drop(columns=FARE)
    np.testing.assert_allclose(ours.predict(rides), theirs.predict(rides), rtol=0, atol=1e-9)
    for coverage in theirs.range_coverages:
        for mine, csv in zip(ours.predict_range(rides, coverage), theirs.predict_range(rides, coverage), strict=True):
            np.testing.assert_allclose(mine, csv, rtol=0, atol=1e-9)


def _json(folder) -> dict:
    import json

    return json.loads((folder / "model.json").read_text())


def test_sampling_is_repeatable_and_independent_of_row_order(bigquery):
    sample = Selection(sample=0.3, seed=5)
    first = load_rides([bigquery.tables.kaggle], sample)
    again = load_rides([bigquery.tables.kaggle], sample)
    shuffled = load_rides([bigquery.tables.shuffled], sample)
    keys = set(first.rides[KEY])
    assert keys == set(again.rides[KEY]) == set(shuffled.rides[KEY])
    assert 0.27 < first.rows_in / 20_476 < 0.33
    other_seed = load_rides([bigquery.tables.kaggle], Selection(sample=0.3, seed=6))
    assert 0.2 < len(keys & set(other_seed.rides[KEY])) / len(keys) < 0.4  # independent draws overlap ~30%
    capped = [set(load_rides([table], Selection(limit=1_000, seed=5)).rides[KEY])
              for table in (bigquery.tables.kaggle, bigquery.tables.shuffled)]
    assert capped[0] == capped[1] and len(capped[0]) > 950


def test_the_tlc_shape_samples_without_a_key(bigquery):
    sample = Selection(sample=0.1, seed=1)
    first, again = (load_rides([bigquery.tables.tlc], sample) for _ in range(2))
    pd.testing.assert_frame_equal(canonical(first.rides), canonical(again.rides))
    assert 0.08 < first.rows_in / 20_476 < 0.12


def test_since_and_until_select_exactly_the_rides_in_the_window(bigquery, raw_rides, shared_csvs):
    times = raw_rides[PICKUP_DATETIME].sort_values().reset_index(drop=True)
    since, until = times[5_000].to_pydatetime(), times[12_000].to_pydatetime()  # real rides' times: both edges
    window = Selection(since=since, until=until)
    expected = raw_rides[(raw_rides[PICKUP_DATETIME] >= since) & (raw_rides[PICKUP_DATETIME] < until)]
    from_bq = load_rides([bigquery.tables.kaggle], window)
    from_csv = load_rides(shared_csvs, window)
    assert from_bq.rows_in == from_csv.rows_in == len(expected)
    assert set(from_bq.rides[KEY]) == set(from_csv.rides[KEY]) == set(clean_rides(expected).rides[KEY])
    assert (from_bq.rides[PICKUP_DATETIME] == since).any()  # the first moment is in
    assert not (from_bq.rides[PICKUP_DATETIME] == until).any()  # the last is out
    tlc = load_rides([bigquery.tables.tlc], window)  # DATETIME pickups
    assert tlc.rows_in == len(expected)


def test_limit_spans_bigquery_and_csv_sources(bigquery, shared_csvs):
    loaded = load_rides([bigquery.tables.kaggle, shared_csvs[1]], Selection(limit=20_500))
    assert loaded.rows_by_source == {bigquery.tables.kaggle: 20_476, shared_csvs[1]: 24}


def test_the_cost_guard_uses_the_dry_run_and_caps_what_is_billed(bigquery):
    """The emulator's dry run answers 0 bytes for every query, so the refusal is tested on the guard itself:
    under, at and over the cap, and the cap carried into the query's maximum_bytes_billed."""
    from google.cloud import bigquery as bq

    dry = bigquery.client().query(f"SELECT * FROM `{bigquery.tables.kaggle.removeprefix('bq://')}`",
                                  job_config=query_config({}, dry_run=True))
    check_cost("bq://t", Estimate(dry.total_bytes_processed or 0), max_gb=0.001)
    check_cost("bq://t", Estimate(25_000_000_000), max_gb=25)
    with pytest.raises(BigQueryError, match=r"would scan 25.00 GB \(about \$0.14 .*over --max-gb 20"):
        check_cost("bq://t", Estimate(25_000_000_000), max_gb=20)
    config = query_config({"seed": "1", "limit": 5}, max_bytes_billed=20_000_000_000)
    assert config.maximum_bytes_billed == 20_000_000_000 and not config.dry_run
    assert [(p.name, p.type_) for p in config.query_parameters] == [("seed", "STRING"), ("limit", "INT64")]
    assert isinstance(config, bq.QueryJobConfig)


def test_table_shapes_are_recognised_or_refused_by_their_columns():
    kaggle = {"key": "STRING", "fare_amount": "FLOAT", "pickup_datetime": "TIMESTAMP", "passenger_count": "INTEGER",
              **{name: "FLOAT" for name in COORDINATE_COLUMNS}}
    assert detect_shape("bq://t", kaggle) is KAGGLE
    tlc = {**kaggle, "tolls_amount": "NUMERIC", "pickup_datetime": "DATETIME"}
    assert detect_shape("bq://t", tlc) is KAGGLE  # a key: the Kaggle fare, tolls included
    del tlc["key"]
    assert detect_shape("bq://t", tlc) is TLC
    del kaggle["key"]
    assert detect_shape("bq://t", kaggle) is KAGGLE  # the bootcamp's tables have no key
    with pytest.raises(SourceShapeError, match="taxi-zone ids"):
        detect_shape("bq://t", {"fare_amount": "NUMERIC", "tolls_amount": "NUMERIC", "pickup_location_id": "STRING"})
    with pytest.raises(SourceShapeError, match="pickup_datetime is DATE"):
        detect_shape("bq://t", {**kaggle, "pickup_datetime": "DATE"})


def test_storage_read_api_reads_a_table_into_the_same_rides(bigquery):
    """The Storage Read path (gRPC, Arrow) on a table of marked rows gives what the REST path gives."""
    from google.cloud import bigquery as bq

    from taxifare.training.bigquery import rest_batches, rides_from_batches, storage_batches, storage_read_client
    from taxifare.training.bigquery_sql import rides_query, table_sql

    client = bigquery.client()
    table = bigquery.tables.kaggle.removeprefix("bq://")
    sql, params = rides_query(table_sql(table), KAGGLE, dict.fromkeys(KAGGLE.columns, "FLOAT64") |
                              {"key": "STRING", "pickup_datetime": "TIMESTAMP"}, Selection(), None)
    marked = f"{PROJECT}.rides.marked"
    client.query(f"CREATE OR REPLACE TABLE `{marked}` AS {sql}", job_config=query_config(params)).result()
    via_storage = rides_from_batches(storage_batches(storage_read_client(None), bq.TableReference.from_string(marked),
                                                     PROJECT), marked, 0, lambda message: None)
    via_rest = rides_from_batches(rest_batches(client.query(f"SELECT * FROM `{marked}`")), marked, 0,
                                  lambda message: None)
    assert via_storage.counts == via_rest.counts
    pd.testing.assert_frame_equal(canonical(via_storage.rides), canonical(via_rest.rides))


# The command line, in a subprocess as a user runs it, against the same local BigQuery.

def test_train_and_evaluate_from_bigquery_say_what_they_scan_and_read(bigquery, tmp_path):
    from tests.test_cli import run, table_rows

    trained = run("train", "--data", bigquery.tables.kaggle, "--limit", "2000", "--out", str(tmp_path),
                  env=bigquery.env)
    assert trained.returncode == 0, trained.stderr
    assert f"{bigquery.tables.kaggle}: the Kaggle schema; the query will scan 0.00 GB (about $0.00" in trained.stderr
    assert "2,000 rows to read" in trained.stderr and "read 2,000 rows in" in trained.stderr
    assert "reading it in REST pages" in trained.stderr  # the emulator's Storage Read API reads no query results
    metadata = _json(tmp_path)
    assert metadata["data"]["sources"] == [bigquery.tables.kaggle]
    assert metadata["data"]["rows_read"] == 2_000 and sum(metadata["data"]["cleaning"].values()) > 0
    query = (f"SELECT * FROM `{bigquery.tables.tlc.removeprefix('bq://')}` "
             "WHERE pickup_datetime >= DATETIME '2014-01-01'")
    evaluated = run("evaluate", "--model", str(tmp_path / "model.joblib"), "--query", query, env=bigquery.env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "an NYC TLC yellow-trip table" in evaluated.stderr
    assert set(table_rows(evaluated.stdout)) == {"mean fare", "distance-only linear", "taxifare pipeline"}


@pytest.fixture(scope="module")
def odd_tables(bigquery_emulator):
    """Tables a user may point at by mistake: another shape, and a 2017-on TLC table (zones, no coordinates)."""
    client = bigquery_emulator.client()
    client.query(f"CREATE OR REPLACE TABLE `{PROJECT}.rides.prices` (id INT64, price FLOAT64)").result()
    client.query(f"CREATE OR REPLACE TABLE `{PROJECT}.rides.zones_2017` (pickup_datetime DATETIME, "
                 "pickup_location_id STRING, dropoff_location_id STRING, passenger_count INT64, "
                 "fare_amount NUMERIC, tolls_amount NUMERIC)").result()
    return {"prices": f"bq://{PROJECT}.rides.prices", "zones": f"bq://{PROJECT}.rides.zones_2017"}


BIGQUERY_MISTAKES = {  # what a user types -> (arguments, environment change, what the one error line must say)
    "no credentials": (["--data", "bq://my-project.taxi.rides"], "no credentials",
                       ["bq://my-project.taxi.rides", "gcloud auth application-default login"]),
    "no billing project": (["--data", "{kaggle}"], {"GOOGLE_CLOUD_PROJECT": ""},
                           ["no billing project", "--project", "GOOGLE_CLOUD_PROJECT"]),
    "a table that does not exist": (["--data", f"bq://{PROJECT}.rides.missing"], {},
                                    [f"bq://{PROJECT}.rides.missing: not found", "rides.missing"]),
    "a project it may not read": (["--query", "SELECT * FROM `nope.taxi.rides`"], {},
                                  ["access denied", "roles/bigquery.dataViewer", f"roles/bigquery.jobUser on the "
                                                                                 f"billing project {PROJECT}"]),
    "bad SQL": (["--query", "SELEC fare_amount FROM rides"], {}, ["BigQuery refused the query", "Syntax error"]),
    "a table of another shape": (["--data", "{prices}"], {},
                                 ["{prices}: missing the column(s) fare_amount, pickup_datetime", "of the Kaggle schema"]),
    "a TLC table from 2017 on": (["--data", "{zones}"], {}, ["taxi-zone ids", "tlc_yellow_trips_2009 ... _2016"]),
    "--read-api storage where it cannot read": (["--data", "{kaggle}", "--read-api", "storage"], {},
                                                ["Storage Read API cannot read the query's result"]),
}


@pytest.mark.parametrize("mistake", BIGQUERY_MISTAKES)
def test_each_bigquery_mistake_is_one_error_line(bigquery, odd_tables, mistake, tmp_path, monkeypatch, capsys):
    """In the test's process, for speed: test_cli checks that a mistake in its own process is one line too."""
    from tests.test_cli import no_google_credentials, run_here

    args, env_change, said = BIGQUERY_MISTAKES[mistake]
    fill = {"kaggle": bigquery.tables.kaggle, **odd_tables}
    env = env_change
    if env_change == "no credentials":
        env = no_google_credentials(tmp_path) | {"BIGQUERY_EMULATOR_HOST": "", "GOOGLE_CLOUD_PROJECT": "my-project"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status, out, err = run_here(capsys, "train", *(arg.format(**fill) for arg in args), "--out", str(tmp_path / "model"))
    assert status == 1, err
    assert "Traceback" not in err + out
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    for words in said:
        assert words.format(**fill) in errors[0], errors[0]
    assert not (tmp_path / "model" / "model.joblib").exists()


@pytest.mark.parametrize(("error", "said"), [
    ("quota", ["quota exceeded in project p", "Quota exceeded: Your project exceeded quota for free query bytes"]),
    ("location", ["not found in location EU", "--location"]),
    ("bytes billed", ["over the --max-gb 25 cap"]),
])
def test_errors_the_emulator_cannot_produce_are_one_line_too(error, said):
    """Quota, wrong location and the bytes-billed cap come from BigQuery only: the client's own exceptions,
    as BigQuery's answers make them, go through the same translation."""
    from google.api_core import exceptions

    from taxifare.training.bigquery import bigquery_errors

    raised = {
        "quota": exceptions.Forbidden("Quota exceeded: Your project exceeded quota for free query bytes scanned",
                                      errors=[{"reason": "quotaExceeded"}]),
        "location": exceptions.NotFound("Not found: Dataset p:taxi was not found in location EU",
                                        errors=[{"reason": "notFound"}]),
        "bytes billed": exceptions.BadRequest("Query exceeded limit for bytes billed: 25000000000.",
                                             errors=[{"reason": "bytesBilledLimitExceeded"}]),
    }[error]
    with pytest.raises((BigQueryError, OSError)) as caught:
        with bigquery_errors("bq://p.taxi.rides", BigQueryOptions(location="EU"), "p"):
            raise raised
    assert "\n" not in str(caught.value)
    for words in said:
        assert words in str(caught.value)
