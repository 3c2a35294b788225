"""Reading training data from and uploading models to GCS, against a real fake-gcs-server."""

import json
import os
from pathlib import Path

import pytest

from taxifare.model import loading, storage
from taxifare.model.loading import METADATA_FILE, MODEL_FILE, sha256_hex
from taxifare.training.artifacts import PIPELINE_FILE, load_pipeline
from taxifare.training.cli import main
from taxifare.training.data import read_rides
from tests.gcs_emulator import EMULATOR_ENV

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


def test_open_binary_streams_bytes_and_names_a_missing_object(gcs, tmp_path):
    local = tmp_path / "rides.csv"
    local.write_bytes(b"key,fare_amount\r\n1,2.5\r\n")
    with storage.open_binary(str(local)) as reader:
        assert reader.read() == b"key,fare_amount\r\n1,2.5\r\n"  # bytes, line ends untouched
    gcs.create_bucket(BUCKET)
    with pytest.raises(FileNotFoundError) as missing:
        storage.open_binary(f"gs://{BUCKET}/data/nope.csv")
    assert str(missing.value) == f"no such object or bucket: gs://{BUCKET}/data/nope.csv"


def test_copy_file_uploads_with_its_content_type_or_copies_into_new_folders(gcs, tmp_path):
    source = tmp_path / "model.json"
    source.write_bytes(b'{"model_version": "v1"}')
    gcs.create_bucket(BUCKET)
    storage.copy_file(source, f"gs://{BUCKET}/models/v1/model.json", "application/json")
    storage.copy_file(source, f"gs://{BUCKET}/models/v1/model.joblib")
    bucket = gcs.client().bucket(BUCKET)
    for name, content_type in (("models/v1/model.json", "application/json"),
                               ("models/v1/model.joblib", "application/octet-stream")):
        blob = bucket.get_blob(name)
        assert blob.download_as_bytes() == source.read_bytes() and blob.content_type == content_type
    with pytest.raises(FileNotFoundError) as missing:
        storage.copy_file(source, "gs://no-such-bucket/models/model.json")
    assert str(missing.value) == "no such object or bucket: gs://no-such-bucket/models/model.json"
    local = tmp_path / "out" / "v1" / "model.json"
    storage.copy_file(source, str(local))
    storage.copy_file(source, str(local.with_name("model.joblib")))  # into a folder that is already there
    assert local.read_bytes() == local.with_name("model.joblib").read_bytes() == source.read_bytes()


def test_check_writable_makes_local_folders_and_names_a_missing_bucket(gcs, tmp_path):
    folder = tmp_path / "models" / "v1"
    storage.check_writable(str(folder))
    storage.check_writable(str(folder))  # already there: fine
    assert folder.is_dir()
    gcs.create_bucket(BUCKET)
    storage.check_writable(f"gs://{BUCKET}/models/v1/")
    with pytest.raises(FileNotFoundError) as missing:
        storage.check_writable("gs://no-such-bucket/models/v1/")
    assert str(missing.value) == ("no bucket gs://no-such-bucket for gs://no-such-bucket/models/v1/: "
                                  "create it (./deploy.sh model does)")
    with pytest.raises(ValueError) as malformed:
        storage.check_writable("gs:///models/")
    assert str(malformed.value) == "not a gs://bucket/prefix URI: 'gs:///models/'"


def test_check_writable_without_credentials_says_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.delenv(EMULATOR_ENV, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))
    with pytest.raises(storage.NoCredentials) as refused:
        storage.check_writable(f"gs://{BUCKET}/models/")
    assert str(refused.value) == f"no Google credentials to access gs://{BUCKET}/models/: {storage.CREDENTIALS_HINT}"


@pytest.mark.parametrize("where", ["local", "gcs"])
def test_read_bytes_takes_an_object_of_exactly_the_cap_and_refuses_one_byte_more(gcs, tmp_path, where):
    """MODEL_MAX_BYTES is the largest model file served, inclusive: the cap, not one byte before it."""
    data = bytes(range(256)) * 40  # 10,240 bytes
    if where == "gcs":
        gcs.create_bucket(BUCKET)
        uri = f"gs://{BUCKET}/models/model.joblib"
        gcs.upload(uri, data)
    else:
        uri = str(tmp_path / "model.joblib")
        Path(uri).write_bytes(data)
    assert storage.read_bytes(uri, max_bytes=len(data)) == data
    with pytest.raises(storage.ObjectTooLarge) as refused:
        storage.read_bytes(uri, max_bytes=len(data) - 1)
    assert str(refused.value) == f"{uri} is over the 10,239-byte limit"


@pytest.mark.timeout(20)  # a FIFO opened for reading without O_NONBLOCK would wait for a writer: fail, not hang
@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_read_bytes_refuses_what_is_not_a_regular_file_at_once_naming_it(tmp_path, kind):
    path = tmp_path / "model.joblib"
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)
    with pytest.raises((IsADirectoryError, storage.NotARegularFile)) as refused:
        storage.read_bytes(str(path))
    assert str(refused.value) == (f"{path} is a directory" if kind == "directory" else f"{path} is not a regular file")


def test_read_bytes_past_its_deadline_says_which_file_took_too_long(tmp_path):
    path = tmp_path / "model.joblib"
    path.write_bytes(b"x" * 100)
    with pytest.raises(TimeoutError) as late:
        storage.read_bytes(str(path), timeout=-1)
    assert str(late.value) == f"reading {path} took longer than its deadline"
