"""Reading training data from and uploading models to GCS, against a real fake-gcs-server."""

import json
from pathlib import Path

import pytest

from taxifare.model import loading, storage
from taxifare.model.loading import METADATA_FILE, MODEL_FILE, sha256_hex
from taxifare.training.artifacts import PIPELINE_FILE, load_pipeline
from taxifare.training.cli import main
from taxifare.training.data import read_rides

BUCKET = "taxifare-test"


def test_reads_a_gs_csv_like_a_local_one(gcs, shared_csvs):
    gcs.create_bucket(BUCKET)
    gcs.upload(f"gs://{BUCKET}/data/train.csv", Path(shared_csvs[0]).read_bytes())
    remote = read_rides([f"gs://{BUCKET}/data/train.csv"], chunk_rows=3_000)
    local = read_rides(shared_csvs[:1])
    assert remote.rows_by_source == {f"gs://{BUCKET}/data/train.csv": 10_000}
    assert remote.rides.equals(local.rides)


def test_train_uploads_versioned_and_latest_copies(gcs, shared_csvs, tmp_path, capsys):
    gcs.create_bucket(BUCKET)
    gcs.upload(f"gs://{BUCKET}/data/extra.csv", Path(shared_csvs[1]).read_bytes())
    code = main(["train", "--data", f"gs://{BUCKET}/data/extra.csv", "--limit", "3000",
                 "--out", str(tmp_path), "--upload", f"gs://{BUCKET}/models/"])
    assert code == 0
    metadata = json.loads((tmp_path / METADATA_FILE).read_text())
    version = metadata["model_version"]
    for folder in (version, "latest"):
        model = storage.read_bytes(f"gs://{BUCKET}/models/{folder}/{MODEL_FILE}")
        assert sha256_hex(model) == metadata["sha256"]
        assert json.loads(storage.read_bytes(f"gs://{BUCKET}/models/{folder}/{METADATA_FILE}")) == metadata
        pipeline = storage.read_bytes(f"gs://{BUCKET}/models/{folder}/{PIPELINE_FILE}")
        assert sha256_hex(pipeline) == metadata["pipeline"]["sha256"]
    assert f"uploaded gs://{BUCKET}/models/latest/{MODEL_FILE}" in capsys.readouterr().out
    loading.loads(storage.read_bytes(f"gs://{BUCKET}/models/latest/{MODEL_FILE}"))
    load_pipeline(storage.read_bytes(f"gs://{BUCKET}/models/latest/{PIPELINE_FILE}"))


def test_missing_object_is_file_not_found_naming_it(gcs):
    gcs.create_bucket(BUCKET)
    with pytest.raises(FileNotFoundError, match=f"gs://{BUCKET}/nope.joblib"):
        storage.read_bytes(f"gs://{BUCKET}/nope.joblib")


@pytest.mark.parametrize("uri", ["gs://", "gs://bucket", "gs://bucket/", "s3://bucket/x"])
def test_malformed_gs_uris_are_rejected(uri):
    with pytest.raises(ValueError, match="gs://bucket/object"):
        storage.split_gcs_uri(uri)
