"""Rides from BigQuery tables or queries: cleaned and sampled in SQL, cost-checked, streamed in pages.

For each source: read its schema (a table's metadata, or a dry run of the user's query) and pick
its shape; dry-run the rides query and print the bytes it scans and what they cost on demand,
refusing it when that is over --max-gb (the query then also runs with that maximum_bytes_billed);
run it; then stream the result through the BigQuery Storage Read API, or in REST pages where that
API cannot read it (the emulator's query results, a missing permission), as Arrow batches into
chunks of rides, counting the cleaning rules' drops as the rows arrive.

Against a local BigQuery (BIGQUERY_EMULATOR_HOST, the client library's own convention) no
credentials are needed; BIGQUERY_STORAGE_EMULATOR_HOST gives its gRPC (Storage Read) address.
google-cloud-bigquery is imported on first use, so the rest of the CLI never pays for it.
"""

import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from taxifare.model.schema import PICKUP_DATETIME
from taxifare.model.storage import CREDENTIALS_HINT, NoCredentials
from taxifare.training.bigquery_options import (
    EMULATOR_ENV,
    PROJECT_ENV,
    QUERY_SCHEME,
    STORAGE_EMULATOR_ENV,
    TABLE_SCHEME,
    USD_PER_TIB,
    BigQueryOptions,
)
from taxifare.training.bigquery_sql import OUTPUT_COLUMNS, detect_shape, rides_query, table_sql
from taxifare.training.cleaning import CleaningResult, combine, count_marked
from taxifare.training.data import CHUNK_ROWS, Selection

REST_PAGE_ROWS = 100_000
PROGRESS_SECONDS = 2.0
ROLES = ("roles/bigquery.dataViewer on the table's dataset (to read it) and roles/bigquery.jobUser on the billing "
         "project {project} (to run queries; add roles/bigquery.readSessionUser for the faster Storage Read API)")


class BigQueryError(ValueError):
    """A BigQuery source cannot be read; the message says why and what to do."""


@dataclass(frozen=True)
class Estimate:
    """What a dry run says a query will scan."""

    bytes: int

    @property
    def gb(self) -> float:
        return self.bytes / 1e9

    @property
    def usd(self) -> float:
        return self.bytes / 2**40 * USD_PER_TIB

    def describe(self) -> str:
        return f"{self.gb:,.2f} GB (about ${self.usd:,.2f} on demand at ${USD_PER_TIB}/TiB; the first TiB a month is free)"


def check_cost(source: str, estimate: Estimate, max_gb: float) -> None:
    """Refuse a query whose dry run is over the cap, before anything is billed."""
    if estimate.bytes > max_gb * 1e9:
        raise BigQueryError(f"{source}: the query would scan {estimate.describe()}, over --max-gb {max_gb:g}: raise "
                            "--max-gb, or read less (--since/--until on a partitioned table, a table with fewer "
                            "columns); sampling does not reduce the bytes a query scans")


@contextmanager
def bigquery_errors(source: str, options: BigQueryOptions, project: str | None) -> Iterator[None]:
    """BigQuery's exceptions as one line that names the source and the fix."""
    from google.api_core import exceptions
    from google.auth.exceptions import DefaultCredentialsError

    try:
        yield
    except DefaultCredentialsError:
        raise NoCredentials(f"no Google credentials to read {source}: {CREDENTIALS_HINT}") from None
    except exceptions.GoogleAPICallError as error:
        raise _one_line(error, source, options, project) from None


def _one_line(error, source: str, options: BigQueryOptions, project: str | None) -> Exception:
    """What a BigQuery error means for this source, by BigQuery's reason code first, then by HTTP status."""
    from google.api_core import exceptions

    details = [item for item in error.errors or [] if isinstance(item, dict)]
    reasons = {item.get("reason") for item in details}
    said = [item["message"] for item in details if item.get("message")]  # BigQuery's words, without the request
    message = " ".join(" ".join(said[:1] or [str(error.message)]).split())
    if "bytesBilledLimitExceeded" in reasons:
        return BigQueryError(f"{source}: over the --max-gb {options.max_gb:g} cap: {message}")
    if reasons & {"quotaExceeded", "rateLimitExceeded"} or isinstance(error, exceptions.TooManyRequests):
        return BigQueryError(f"{source}: BigQuery quota exceeded in project {project}: {message} (wait and retry, or "
                             "ask for more quota on the Cloud console's Quotas page)")
    if isinstance(error, exceptions.Forbidden):
        return PermissionError(f"{source}: access denied: {message}. It needs {ROLES.format(project=project)}")
    if isinstance(error, exceptions.NotFound):
        if options.location and "location" in message:
            return BigQueryError(f"{source}: not found in location {options.location} ({message}): give the "
                                 "dataset's own location with --location, or leave --location out")
        return FileNotFoundError(f"{source}: not found: {message}")
    if isinstance(error, exceptions.BadRequest):
        if "location" in message.lower():
            return BigQueryError(f"{source}: wrong location: {message} (give the dataset's location with --location)")
        return BigQueryError(f"{source}: BigQuery refused the query: {message}")
    return BigQueryError(f"{source}: BigQuery answered {error.code}: {message}")


def _endpoint(host: str) -> str:
    return host if "://" in host else f"http://{host}"


class BigQuerySource:
    """One BigQuery client for a run; reads each bq:// table or query into cleaned rides."""

    def __init__(self, options: BigQueryOptions, progress: Callable[[str], None]):
        self.options, self.progress = options, progress
        self._client = None
        self._read_client = None
        self._credentials = None
        self.project: str | None = options.project or os.environ.get(PROJECT_ENV) or None

    def client(self, source: str):
        """The BigQuery client, made on first use: an emulator needs no credentials, BigQuery needs ADC."""
        if self._client is not None:
            return self._client
        import google.auth
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        emulator = os.environ.get(EMULATOR_ENV)
        with bigquery_errors(source, self.options, self.project):
            if emulator:
                credentials = AnonymousCredentials()
                client_options = ClientOptions(api_endpoint=_endpoint(emulator))
            else:
                credentials, default_project = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/bigquery"])
                self.project = self.project or default_project
                client_options = None
        if not self.project:
            raise BigQueryError(f"{source}: no billing project for BigQuery: pass --project PROJECT or set "
                                f"{PROJECT_ENV} (the project whose quota and bill the queries use)")
        self._credentials = credentials
        self._client = bigquery.Client(project=self.project, credentials=credentials, location=self.options.location,
                                       client_options=client_options)
        return self._client

    def read(self, source: str, selection: Selection, limit: int | None) -> CleaningResult:
        """The source's selected rides, repaired and cleaned in SQL, with the drop counts."""
        client = self.client(source)
        with bigquery_errors(source, self.options, self.project):
            source_sql, column_types = self._schema(client, source)
            shape = detect_shape(source, column_types)
            sql, params = rides_query(source_sql, shape, column_types, selection, limit)
            estimate = Estimate(client.query(sql, job_config=query_config(params, dry_run=True)).total_bytes_processed
                                or 0)
            self.progress(f"{source}: {shape.name}; the query will scan {estimate.describe()}")
            check_cost(source, estimate, self.options.max_gb)
            started = time.perf_counter()
            job = client.query(sql, job_config=query_config(params, max_bytes_billed=int(self.options.max_gb * 1e9)))
            total = job.result(max_results=0).total_rows or 0
            self.progress(f"{source}: query done in {time.perf_counter() - started:.1f}s, {total:,} rows to read")
            return rides_from_batches(self._batches(client, job, source), source, total, self.progress)

    def _schema(self, client, source: str) -> tuple[str, dict[str, str]]:
        """The SQL that reads the source, and the types of the columns it gives."""
        if source.startswith(TABLE_SCHEME):
            table = source.removeprefix(TABLE_SCHEME)
            sql = table_sql(table)
            fields = client.get_table(table).schema
        else:
            sql = source.removeprefix(QUERY_SCHEME)
            fields = client.query(sql, job_config=query_config({}, dry_run=True)).schema
        return sql, {field.name: field.field_type for field in fields}

    def _batches(self, client, job, source: str) -> Iterator[object]:
        """The query result as Arrow record batches: Storage Read API first (unless --read-api rest), else REST pages."""
        from google.api_core import exceptions

        if self.options.read_api != "rest":
            try:
                pages = storage_batches(self._storage_client(), job.destination, client.project)
                first = next(pages, None)
            except (ImportError, exceptions.GoogleAPICallError) as error:
                why = " ".join(str(getattr(error, "message", None) or error).split())
                if self.options.read_api == "storage":
                    raise BigQueryError(f"{source}: the Storage Read API cannot read the query's result: {why}") from None
                self.progress(f"{source}: the Storage Read API cannot read the result ({why[:120]}): reading it in "
                              "REST pages")
            else:
                self.progress(f"{source}: reading through the BigQuery Storage Read API")
                if first is not None:
                    yield first
                    yield from pages
                return
        yield from rest_batches(job)

    def _storage_client(self):
        if self._read_client is None:
            self._read_client = storage_read_client(self._credentials)
        return self._read_client


def query_config(params: dict[str, object], dry_run: bool = False, max_bytes_billed: int | None = None):
    """A QueryJobConfig with typed parameters (str: STRING, int: INT64, datetime: TIMESTAMP)."""
    from google.cloud import bigquery

    kinds = {str: "STRING", int: "INT64"}
    return bigquery.QueryJobConfig(
        dry_run=dry_run, use_query_cache=not dry_run, maximum_bytes_billed=max_bytes_billed,
        query_parameters=[bigquery.ScalarQueryParameter(name, kinds.get(type(value), "TIMESTAMP"), value)
                          for name, value in params.items()])


def storage_read_client(credentials: object):
    """A Storage Read API client: the emulator's gRPC address when set, else Google's with these credentials."""
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

    emulator = os.environ.get(STORAGE_EMULATOR_ENV)
    if os.environ.get(EMULATOR_ENV) and not emulator:
        raise ImportError(f"{STORAGE_EMULATOR_ENV} is not set: no Storage Read API address for the local BigQuery")
    if not emulator:
        return BigQueryReadClient(credentials=credentials)
    import grpc
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    unlimited = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]  # as Google's channel
    channel = grpc.insecure_channel(emulator.removeprefix("http://"), options=unlimited)
    return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))


def storage_batches(read_client, table, project: str) -> Iterator[object]:
    """A table's rows through the Storage Read API: one stream, each response one Arrow record batch."""
    import pyarrow as pa
    from google.cloud.bigquery_storage_v1 import types

    session = read_client.create_read_session(
        parent=f"projects/{project}", max_stream_count=1,
        read_session=types.ReadSession(table=table.to_bqstorage(), data_format=types.DataFormat.ARROW))
    schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
    for stream in session.streams:
        for response in read_client.read_rows(stream.name):
            yield pa.ipc.read_record_batch(pa.py_buffer(response.arrow_record_batch.serialized_record_batch), schema)


def rest_batches(job) -> Iterator[object]:
    """A query job's result in REST pages (tabledata JSON), each turned into one Arrow batch."""
    yield from job.result(page_size=REST_PAGE_ROWS).to_arrow_iterable()


def rides_from_batches(batches: Iterable[object], source: str, total: int,
                       progress: Callable[[str], None]) -> CleaningResult:
    """Marked rows (rides_query's result) into cleaned chunks of rides, counting drops; progress on each batch."""
    parts, pending, pending_rows, read = [], [], 0, 0
    started = said = time.perf_counter()
    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        read += batch.num_rows
        if pending_rows >= CHUNK_ROWS:
            parts.append(count_marked(_frame(pending), source))
            pending, pending_rows = [], 0
        if time.perf_counter() - said >= PROGRESS_SECONDS:
            said = time.perf_counter()
            progress(_progress_line(source, read, total, said - started))
    if pending or not parts:
        parts.append(count_marked(_frame(pending), source))
    progress(f"{source}: read {read:,} rows in {time.perf_counter() - started:.1f}s")
    return combine(parts)


def _frame(batches: list) -> pd.DataFrame:
    """Arrow batches as a rides frame: the Kaggle columns (UTC datetimes) and the cleaning marks."""
    if not batches:
        return pd.DataFrame({name: pd.Series(dtype="float64") for name in OUTPUT_COLUMNS})
    frame = pd.concat([batch.to_pandas() for batch in batches], ignore_index=True)
    frame[PICKUP_DATETIME] = pd.to_datetime(frame[PICKUP_DATETIME], utc=True)
    return frame[list(OUTPUT_COLUMNS)]


def _progress_line(source: str, read: int, total: int, elapsed: float) -> str:
    if not total or not read:
        return f"{source}: {read:,} rows read, {elapsed:.1f}s"
    left = elapsed * (total - read) / read
    return f"{source}: {read:,} of {total:,} rows read ({read / total:.0%}), {elapsed:.1f}s, about {left:.0f}s left"
