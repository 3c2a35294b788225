"""How BigQuery sources are named and configured: light on purpose, so `--help` imports no client or pandas."""

from dataclasses import dataclass

EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
"""A local BigQuery's REST address (host:port), the client library's own convention: no credentials then."""
STORAGE_EMULATOR_ENV = "BIGQUERY_STORAGE_EMULATOR_HOST"
"""That local BigQuery's gRPC address for the Storage Read API; without it, results are read in REST pages."""
PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"
TABLE_SCHEME = "bq://"
QUERY_SCHEME = "bq-query:"
READ_APIS = ("auto", "storage", "rest")
DEFAULT_MAX_GB = 25.0
"""Lets one TLC year's eight columns through (about 10 GB scanned) and stops a runaway scan (25 GB: about $0.14)."""
USD_PER_TIB = 6.25
"""BigQuery's on-demand query price (US multi-region); the first TiB each month is free."""


@dataclass(frozen=True)
class BigQueryOptions:
    """Which project runs and pays for the queries, where, how much one may scan, and how results are read."""

    project: str | None = None
    location: str | None = None
    max_gb: float = DEFAULT_MAX_GB
    read_api: str = "auto"


def is_bigquery_source(source: str) -> bool:
    """True for bq://PROJECT.DATASET.TABLE and for queries (query_source)."""
    return source.startswith((TABLE_SCHEME, QUERY_SCHEME))


def query_source(sql: str) -> str:
    """A --query as a data source: its SQL, whitespace folded, after QUERY_SCHEME."""
    return QUERY_SCHEME + " ".join(sql.split())
