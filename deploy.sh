#!/usr/bin/env bash
# Deploy the taxi-fare predictor to Google Cloud. Run ./deploy.sh --help.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [--dry-run] STEP [ARGS]

Steps:
  model      upload models/model.joblib and model.json to
             gs://$BUCKET/models/<model_version>/ and gs://$BUCKET/models/latest/
  function   deploy a Cloud Functions gen2 HTTP function (entry point: predict)
  run        deploy the same function as a Cloud Run service built from source
  image      build a container image with buildpacks (gcloud builds submit --pack)
  bigquery   create BigQuery remote functions predict_fare() and predict_fare_range()
             calling the service
  smoke URL  check a deployment (or a local server) answers like the API should
  delete     delete the function/service, the runtime identity it created, image,
             remote functions and connection (the bucket too with DELETE_BUCKET=1)

Options:
  --dry-run  print each gcloud/bq command, one a line, instead of running it
             (creation steps assume nothing exists yet; values that would come
             from a cloud call are placeholders)
  -h, --help show this help

Configuration comes from the environment or from a .env file in the repository
root (KEY=VALUE lines; the environment wins; ENV_FILE=path picks another file):
  GCP_PROJECT_ID  gcloud's project (gcloud config set project ...); --dry-run works without
  GCP_REGION      europe-west1
  BUCKET          $GCP_PROJECT_ID-taxifare   SERVICE_NAME  taxifare
  MODEL_DIR       models       MODEL_URI/MODEL_SHA256  from $MODEL_DIR/model.json
  MEMORY          512Mi        CPU           1
  CONCURRENCY     8            THREADS       $CONCURRENCY
  MIN_INSTANCES   0            MAX_INSTANCES 3           TIMEOUT  60s
  PRIVATE         0 (1: require an identity token to call the service)
  SERVICE_ACCOUNT runtime identity (default: $SERVICE_NAME-runtime@$GCP_PROJECT_ID.iam.gserviceaccount.com,
                  created by function/run with read access to the model bucket only;
                  "default": the project's compute account, often a project Editor)
  LABELS          app=$SERVICE_NAME (on the bucket, function/service, image repository, dataset)
  REPOSITORY      $SERVICE_NAME (Artifact Registry)      IMAGE_TAG  git commit
  IMAGE           $GCP_REGION-docker.pkg.dev/$GCP_PROJECT_ID/$REPOSITORY/$SERVICE_NAME:$IMAGE_TAG
  BQ_DATASET      taxifare     BQ_LOCATION   $GCP_REGION  BQ_CONNECTION  taxifare
  RANGE_COVERAGE  80 (predict_fare_range's coverage, in percent)
  SMOKE_TOKEN     bearer token for smoke (default with PRIVATE=1: gcloud auth print-identity-token)
  DELETE_BUCKET   0
EOF
}

# The repository root: the directory of this script (found without dirname,
# so that a missing gcloud is reported even with a bare PATH).
script_dir() {
  local path=${BASH_SOURCE[0]}
  [[ $path == */* ]] || path=./$path
  cd "${path%/*}" && pwd
}

DRY_RUN=0
ROOT=$(script_dir)
ENTRY_POINT=predict
SMOKE_QUERY='pickup_datetime=2013-07-06%2017:18:00&pickup_longitude=-73.950655&pickup_latitude=40.783282&dropoff_longitude=-73.984365&dropoff_latitude=40.769802&passenger_count=1'
SMOKE_INSTANCE='{"pickup_datetime": "2013-07-06 17:18:00", "pickup_longitude": -73.950655, "pickup_latitude": 40.783282, "dropoff_longitude": -73.984365, "dropoff_latitude": 40.769802, "passenger_count": 1}'

die() {
  printf 'deploy.sh: error: %s\n' "$*" >&2
  exit 1
}

info() {
  printf '%s\n' "$*" >&2
}

usage_error() {
  usage >&2
  die "$*"
}

# --- configuration ---------------------------------------------------------

# Read KEY=VALUE lines from a .env file without executing it. Variables already
# set in the environment win. Surrounding quotes are stripped; no expansion.
load_env_file() {
  local file=$1 line key value
  [[ -f $file ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[2]}
    value=${BASH_REMATCH[3]}
    if [[ $value =~ ^\"(.*)\"[[:space:]]*$ || $value =~ ^\'(.*)\'[[:space:]]*$ ]]; then
      value=${BASH_REMATCH[1]}
    fi
    [[ -n ${!key+set} ]] || export "$key=$value"
  done <"$file"
}

require_var() {
  [[ -n ${!1:-} ]] || die "$1 is not set: export $1=... or add '$1=...' to $ENV_FILE ($2)"
}

require_flag() {
  case ${!1} in
    0 | 1) ;;
    *) die "$1 must be 0 or 1, got '${!1}'" ;;
  esac
}

# The project: GCP_PROJECT_ID, else gcloud's own (gcloud config set project ...). A dry run
# with neither prints commands for the placeholder your-project-id and says so.
resolve_project() {
  if [[ -z ${GCP_PROJECT_ID:-} ]] && command -v gcloud >/dev/null; then
    GCP_PROJECT_ID=$(gcloud config get-value project 2>/dev/null || true)
  fi
  if [[ -z ${GCP_PROJECT_ID:-} ]]; then
    ((DRY_RUN)) || die "no project: set GCP_PROJECT_ID (environment or $ENV_FILE) or run 'gcloud config set project YOUR_PROJECT_ID'"
    GCP_PROJECT_ID=your-project-id
    info "No project set (GCP_PROJECT_ID, gcloud config): the commands below use the placeholder your-project-id."
  fi
}

set_defaults() {
  resolve_project
  : "${GCP_REGION:=europe-west1}"
  : "${BUCKET:=$GCP_PROJECT_ID-taxifare}"
  : "${SERVICE_NAME:=taxifare}"
  : "${MODEL_DIR:=models}"
  : "${MEMORY:=512Mi}"
  : "${CPU:=1}"
  : "${CONCURRENCY:=8}"
  : "${THREADS:=$CONCURRENCY}"
  : "${MIN_INSTANCES:=0}"
  : "${MAX_INSTANCES:=3}"
  : "${TIMEOUT:=60s}"
  : "${PRIVATE:=0}"
  : "${REPOSITORY:=$SERVICE_NAME}"
  : "${BQ_DATASET:=taxifare}"
  : "${BQ_LOCATION:=$GCP_REGION}"
  : "${BQ_CONNECTION:=taxifare}"
  : "${RANGE_COVERAGE:=80}"
  : "${DELETE_BUCKET:=0}"
  RUNTIME_ACCOUNT=$SERVICE_NAME-runtime@$GCP_PROJECT_ID.iam.gserviceaccount.com # the one this script creates
  : "${SERVICE_ACCOUNT:=$RUNTIME_ACCOUNT}"
  : "${LABELS:=app=$SERVICE_NAME}"
  require_flag PRIVATE
  require_flag DELETE_BUCKET
}

require_gcloud() {
  command -v gcloud >/dev/null ||
    die "gcloud not found: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
}

require_bq() {
  command -v bq >/dev/null ||
    die "bq not found: it ships with the Google Cloud CLI ('gcloud components install bq')"
}

require_auth() {
  [[ -n $(gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null) ]] ||
    die "gcloud is not authenticated: run 'gcloud auth login' (or activate a service account)"
}

# --- running commands ------------------------------------------------------

# Print a command so that it can be pasted into a shell: words made only of
# safe characters stay bare, anything else is single-quoted.
print_cmd() {
  local arg words=()
  for arg in "$@"; do
    if [[ $arg =~ ^[-A-Za-z0-9_./:=@,%+]+$ ]]; then
      words+=("$arg")
    else
      words+=("'${arg//\'/\'\\\'\'}'")
    fi
  done
  printf '%s\n' "${words[*]}"
}

# Run a command, or only print it with --dry-run.
run_cmd() {
  if ((DRY_RUN)); then
    print_cmd "$@"
  else
    info "+ $(print_cmd "$@")"
    "$@"
  fi
}

# capture VAR PLACEHOLDER CMD...: store the output of CMD in VAR
# (with --dry-run print CMD and store PLACEHOLDER).
capture() {
  local var=$1 placeholder=$2 output
  shift 2
  if ((DRY_RUN)); then
    print_cmd "$@"
    output=$placeholder
  else
    output=$("$@")
  fi
  printf -v "$var" '%s' "$output"
}

# probe DRY_RUN_ANSWER CMD...: succeed when the read-only CMD succeeds
# (with --dry-run print CMD and return DRY_RUN_ANSWER).
probe() {
  local answer=$1
  shift
  if ((DRY_RUN)); then
    print_cmd "$@"
    return "$answer"
  fi
  "$@" >/dev/null 2>&1
}

# With --dry-run a resource is assumed missing before creation ...
missing() { ! probe 1 "$@"; }
# ... and present before deletion.
present() { probe 0 "$@"; }

# --- model -----------------------------------------------------------------

json_field() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" ||
    die "cannot read field '$2' from $1"
}

# Set MODEL_VERSION, MODEL_SHA256 and MODEL_URI (where the model step puts
# the model) from $MODEL_DIR/model.json.
read_model_metadata() {
  local meta=$MODEL_DIR/model.json
  if [[ -f $meta ]]; then
    MODEL_VERSION=$(json_field "$meta" model_version)
    MODEL_SHA256=$(json_field "$meta" sha256)
  elif ((DRY_RUN)); then
    MODEL_VERSION=MODEL_VERSION
    MODEL_SHA256=MODEL_SHA256
  else
    die "$meta not found: train a model first ('make run'), or set MODEL_DIR (or MODEL_URI for function/run)"
  fi
  MODEL_URI=gs://$BUCKET/models/$MODEL_VERSION/model.joblib
}

# A private bucket: uniform access, public access prevented, labelled.
ensure_bucket() {
  if missing gcloud storage buckets describe "gs://$BUCKET" --project="$GCP_PROJECT_ID"; then
    run_cmd gcloud storage buckets create "gs://$BUCKET" --project="$GCP_PROJECT_ID" \
      --location="$GCP_REGION" --uniform-bucket-level-access --public-access-prevention
    run_cmd gcloud storage buckets update "gs://$BUCKET" --project="$GCP_PROJECT_ID" --update-labels="$LABELS"
  fi
}

# The function's identity: by default a service account of its own that can only read the model
# bucket (SERVICE_ACCOUNT=default keeps the project's compute account, often a project Editor).
ensure_runtime_identity() {
  [[ $SERVICE_ACCOUNT != default ]] || return 0
  if [[ $SERVICE_ACCOUNT == "$RUNTIME_ACCOUNT" ]] &&
    missing gcloud iam service-accounts describe "$SERVICE_ACCOUNT" --project="$GCP_PROJECT_ID"; then
    run_cmd gcloud iam service-accounts create "$SERVICE_NAME-runtime" --project="$GCP_PROJECT_ID" \
      --display-name="$SERVICE_NAME runtime (reads the model bucket)"
  fi
  run_cmd gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" --project="$GCP_PROJECT_ID" \
    --member="serviceAccount:$SERVICE_ACCOUNT" --role=roles/storage.objectViewer
}

step_model() {
  local dest
  read_model_metadata
  if ((!DRY_RUN)); then
    [[ -f $MODEL_DIR/model.joblib ]] || die "$MODEL_DIR/model.joblib not found: run 'make run'"
  fi
  ensure_bucket
  for dest in "$MODEL_VERSION" latest; do
    run_cmd gcloud storage cp "$MODEL_DIR/model.joblib" "$MODEL_DIR/model.json" \
      "gs://$BUCKET/models/$dest/" --project="$GCP_PROJECT_ID"
  done
  info "MODEL_URI=$MODEL_URI"
  info "MODEL_SHA256=$MODEL_SHA256"
}

# --- function / run ----------------------------------------------------------

# "3.11" or "3.11.9" in .python-version -> python311
python_runtime() {
  local version major minor
  [[ -f $ROOT/.python-version ]] || die "$ROOT/.python-version not found: it names the Python version (e.g. 3.11)"
  version=$(<"$ROOT/.python-version")
  IFS=. read -r major minor _ <<<"$version"
  printf 'python%s%s\n' "$major" "$minor"
}

# MODEL_URI, MODEL_SHA256 and THREADS for the server: the model of model.json
# unless MODEL_URI is set. Memory, CPU, concurrency and threads are set
# together: one request per thread.
server_env_vars() {
  [[ -n ${MODEL_URI:-} ]] || read_model_metadata
  local vars="MODEL_URI=$MODEL_URI"
  [[ -z ${MODEL_SHA256:-} ]] || vars+=",MODEL_SHA256=$MODEL_SHA256"
  printf '%s,THREADS=%s' "$vars" "$THREADS"
}

auth_flag() {
  if ((PRIVATE)); then
    printf '%s' --no-allow-unauthenticated
  else
    printf '%s' --allow-unauthenticated
  fi
}

service_url() {
  capture "$1" "https://$SERVICE_NAME-PROJECT_NUMBER.$GCP_REGION.run.app" \
    gcloud run services describe "$SERVICE_NAME" --project="$GCP_PROJECT_ID" \
    --region="$GCP_REGION" --format='value(status.url)'
}

print_next_steps() {
  info "URL: $1"
  info "Check it with: ./deploy.sh smoke $1"
}

# The runtime identity flag, unless SERVICE_ACCOUNT=default.
identity_flags() {
  IDENTITY=()
  [[ $SERVICE_ACCOUNT == default ]] || IDENTITY=(--service-account="$SERVICE_ACCOUNT")
}

step_function() {
  local env_vars runtime url
  env_vars=$(server_env_vars)
  runtime=$(python_runtime)
  ensure_runtime_identity
  identity_flags
  run_cmd gcloud functions deploy "$SERVICE_NAME" --gen2 --project="$GCP_PROJECT_ID" \
    --region="$GCP_REGION" --source=. --runtime="$runtime" \
    --entry-point="$ENTRY_POINT" --trigger-http "$(auth_flag)" \
    --memory="$MEMORY" --cpu="$CPU" --concurrency="$CONCURRENCY" \
    --min-instances="$MIN_INSTANCES" --max-instances="$MAX_INSTANCES" \
    --timeout="$TIMEOUT" --set-env-vars="$env_vars" --update-labels="$LABELS" "${IDENTITY[@]}"
  capture url "https://$SERVICE_NAME-PROJECT_NUMBER.$GCP_REGION.run.app" \
    gcloud functions describe "$SERVICE_NAME" --gen2 --project="$GCP_PROJECT_ID" \
    --region="$GCP_REGION" --format='value(serviceConfig.uri)'
  print_next_steps "$url"
}

step_run() {
  local env_vars url
  env_vars=$(server_env_vars)
  ensure_runtime_identity
  identity_flags
  run_cmd gcloud run deploy "$SERVICE_NAME" --project="$GCP_PROJECT_ID" \
    --region="$GCP_REGION" --source=. --function="$ENTRY_POINT" "$(auth_flag)" \
    --memory="$MEMORY" --cpu="$CPU" --concurrency="$CONCURRENCY" --cpu-boost \
    --min-instances="$MIN_INSTANCES" --max-instances="$MAX_INSTANCES" \
    --timeout="$TIMEOUT" --set-env-vars="$env_vars" --update-labels="$LABELS" "${IDENTITY[@]}"
  service_url url
  print_next_steps "$url"
}

# --- image -----------------------------------------------------------------

image_path() {
  printf '%s-docker.pkg.dev/%s/%s/%s' "$GCP_REGION" "$GCP_PROJECT_ID" "$REPOSITORY" "$SERVICE_NAME"
}

default_image_tag() {
  git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || printf 'latest\n'
}

step_image() {
  local image=${IMAGE:-}
  [[ -n $image ]] || image="$(image_path):${IMAGE_TAG:-$(default_image_tag)}"
  if missing gcloud artifacts repositories describe "$REPOSITORY" \
    --project="$GCP_PROJECT_ID" --location="$GCP_REGION"; then
    run_cmd gcloud artifacts repositories create "$REPOSITORY" --project="$GCP_PROJECT_ID" \
      --location="$GCP_REGION" --repository-format=docker \
      --description="taxifare function images" --labels="$LABELS"
  fi
  run_cmd gcloud builds submit . --project="$GCP_PROJECT_ID" --region="$GCP_REGION" \
    --pack="image=$image,env=GOOGLE_FUNCTION_TARGET=$ENTRY_POINT"
  info "Image: $image"
  info "Run it locally (it needs credentials that can read MODEL_URI):"
  info "  docker run --rm -e PORT=8080 -e MODEL_URI=gs://$BUCKET/models/latest/model.joblib -p 8080:8080 $image"
  info "Deploy it: gcloud run deploy $SERVICE_NAME --image $image --region $GCP_REGION --project $GCP_PROJECT_ID"
  info "  (add --set-env-vars and the sizing flags that './deploy.sh --dry-run run' shows)"
}

# --- bigquery --------------------------------------------------------------

connection_id() {
  printf '%s.%s.%s' "$GCP_PROJECT_ID" "$BQ_LOCATION" "$BQ_CONNECTION"
}

# The remote functions: predict_fare returns the fare; predict_fare_range returns
# JSON {"fare": ..., "range": {"coverage": 80, "low": ..., "high": ...}}, asked
# for through user_defined_context (RANGE_COVERAGE, default 80).
ROUTINES=(predict_fare predict_fare_range)

routine_id() {
  printf '%s.%s.%s' "$GCP_PROJECT_ID" "$BQ_DATASET" "$1"
}

# remote_function_sql ROUTINE URL
remote_function_sql() {
  local returns=FLOAT64 context=""
  if [[ $1 == predict_fare_range ]]; then
    returns=JSON
    context=", user_defined_context = [(\"range\", \"$RANGE_COVERAGE\")]"
  fi
  # shellcheck disable=SC2016 # backticks quote BigQuery identifiers
  printf 'CREATE OR REPLACE FUNCTION `%s`(pickup_datetime STRING, pickup_longitude FLOAT64, pickup_latitude FLOAT64, dropoff_longitude FLOAT64, dropoff_latitude FLOAT64, passenger_count INT64) RETURNS %s REMOTE WITH CONNECTION `%s` OPTIONS (endpoint = "%s", max_batching_rows = 1000%s)' \
    "$(routine_id "$1")" "$returns" "$(connection_id)" "$2" "$context"
}

ensure_dataset() {
  local label labels label_flags=()
  IFS=, read -r -a labels <<<"$LABELS"
  for label in "${labels[@]}"; do label_flags+=(--label="${label/=/:}"); done # bq: one --label=key:value each
  if missing bq show --project_id="$GCP_PROJECT_ID" --dataset "$GCP_PROJECT_ID:$BQ_DATASET"; then
    run_cmd bq mk --project_id="$GCP_PROJECT_ID" --location="$BQ_LOCATION" \
      "${label_flags[@]}" --dataset "$GCP_PROJECT_ID:$BQ_DATASET"
  fi
}

ensure_connection() {
  if missing bq show --project_id="$GCP_PROJECT_ID" --connection "$(connection_id)"; then
    run_cmd bq mk --connection --project_id="$GCP_PROJECT_ID" --location="$BQ_LOCATION" \
      --connection_type=CLOUD_RESOURCE "$BQ_CONNECTION"
  fi
}

# Set CONNECTION_SA to the connection's service account, which BigQuery uses
# to call the endpoint.
read_connection_service_account() {
  local json
  capture json '{"cloudResource": {"serviceAccountId": "CONNECTION_SERVICE_ACCOUNT@gcp-sa-bigquery-condel.iam.gserviceaccount.com"}}' \
    bq show --project_id="$GCP_PROJECT_ID" --format=json --connection "$(connection_id)"
  CONNECTION_SA=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["cloudResource"]["serviceAccountId"])' "$json") ||
    die "cannot find the service account of connection $(connection_id)"
}

step_bigquery() {
  local url sql example
  require_bq
  service_url url
  ensure_dataset
  ensure_connection
  read_connection_service_account
  run_cmd gcloud run services add-iam-policy-binding "$SERVICE_NAME" --project="$GCP_PROJECT_ID" \
    --region="$GCP_REGION" --member="serviceAccount:$CONNECTION_SA" --role=roles/run.invoker
  for routine in "${ROUTINES[@]}"; do
    sql=$(remote_function_sql "$routine" "$url")
    info "SQL: $sql"
    run_cmd bq query --project_id="$GCP_PROJECT_ID" --location="$BQ_LOCATION" --use_legacy_sql=false "$sql"
  done
  example="SELECT \`$(routine_id predict_fare)\`(\"2013-07-06 17:18:00\", -73.950655, 40.783282, -73.984365, 40.769802, 1) AS fare"
  info "Try it (IAM changes can take a minute to apply):"
  info "  $(print_cmd bq query --project_id="$GCP_PROJECT_ID" --use_legacy_sql=false "$example")"
  info "  with its ${RANGE_COVERAGE}% range: \`$(routine_id predict_fare_range)\`(...) returns JSON; read it with"
  info "  JSON_VALUE(result, '\$.range.low') and JSON_VALUE(result, '\$.range.high')"
}

# --- smoke -----------------------------------------------------------------

SMOKE_FAILURES=0

# smoke_check NAME KIND METHOD URL [JSON_BODY]: call the URL and validate the
# answer (KIND: greeting, fare or predictions).
smoke_check() {
  local name=$1 kind=$2 method=$3 url=$4 body=${5:-} response status problem
  local args=(--silent --show-error --max-time "${SMOKE_MAX_TIME:-30}" --request "$method"
    --write-out '\n%{http_code}')
  [[ -z $SMOKE_AUTH ]] || args+=(--header "Authorization: Bearer $SMOKE_AUTH")
  [[ -z $body ]] || args+=(--header 'Content-Type: application/json' --data "$body")
  if ! response=$(curl "${args[@]}" "$url" 2>&1); then
    problem="request failed: ${response%%$'\n'*}" # curl's one-line error, without the status it could not get
  else
    status=${response##*$'\n'}
    response=${response%$'\n'*}
    if [[ $status != 200 ]]; then
      problem="HTTP $status: ${response:0:300}"
    else
      problem=$(smoke_validate "$kind" "$response")
    fi
  fi
  if [[ -z $problem ]]; then
    printf 'ok   %s\n' "$name"
  else
    printf 'FAIL %s: %s\n' "$name" "$problem"
    SMOKE_FAILURES=$((SMOKE_FAILURES + 1))
  fi
}

# Print what is wrong with a JSON answer, nothing when it is right.
smoke_validate() {
  python3 - "$1" "$2" <<'PY'
import json, math, sys

kind, text = sys.argv[1], sys.argv[2]

def is_fare(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0

try:
    answer = json.loads(text)
except ValueError:
    print("not JSON: " + text[:300])
    sys.exit()
if kind == "greeting":
    ok = answer == {"greeting": "Hello"}
    expected = '{"greeting": "Hello"}'
elif kind == "fare":
    ok = isinstance(answer, dict) and list(answer) == ["fare"] and is_fare(answer["fare"])
    expected = '{"fare": <positive number>}'
else:
    ok = (isinstance(answer, dict) and list(answer) == ["predictions"]
          and isinstance(answer["predictions"], list) and len(answer["predictions"]) == 2
          and all(is_fare(x) for x in answer["predictions"]))
    expected = '{"predictions": [<positive number>, <positive number>]}'
if not ok:
    print("expected " + expected + ", got " + text[:300])
PY
}

step_smoke() {
  local base=${1:-}
  [[ -n $base && $# -eq 1 ]] || usage_error "smoke needs exactly one argument: the service URL"
  base=${base%/}
  SMOKE_AUTH=${SMOKE_TOKEN:-}
  if [[ -z $SMOKE_AUTH && ${PRIVATE:-0} == 1 ]]; then
    require_gcloud
    SMOKE_AUTH=$(gcloud auth print-identity-token) ||
      die "cannot get an identity token: run 'gcloud auth login' or set SMOKE_TOKEN"
  fi
  smoke_check "GET  /" greeting GET "$base/"
  smoke_check "GET  /predict" fare GET "$base/predict?$SMOKE_QUERY"
  smoke_check "POST / one instance" fare POST "$base/" "$SMOKE_INSTANCE"
  smoke_check "POST / instances" predictions POST "$base/" "{\"instances\": [$SMOKE_INSTANCE, $SMOKE_INSTANCE]}"
  ((SMOKE_FAILURES == 0)) || die "smoke test of $base FAILED: $SMOKE_FAILURES of 4 checks"
  printf 'smoke test of %s passed\n' "$base"
}

# --- delete ----------------------------------------------------------------

confirm_delete() {
  local answer
  ((!DRY_RUN)) && [[ -t 0 ]] || return 0
  read -r -p "Delete $SERVICE_NAME (function/service, its runtime identity, image, BigQuery remote functions and connection) in $GCP_PROJECT_ID? [y/N] " answer
  [[ $answer == [yY]* ]] || die "cancelled"
}

delete_bigquery() {
  local routine
  for routine in "${ROUTINES[@]}"; do
    if present bq show --project_id="$GCP_PROJECT_ID" --routine "$GCP_PROJECT_ID:$BQ_DATASET.$routine"; then
      run_cmd bq rm -f --project_id="$GCP_PROJECT_ID" --routine "$GCP_PROJECT_ID:$BQ_DATASET.$routine"
    fi
  done
  if present bq show --project_id="$GCP_PROJECT_ID" --connection "$(connection_id)"; then
    run_cmd bq rm -f --project_id="$GCP_PROJECT_ID" --connection "$(connection_id)"
  fi
}

delete_serving() {
  # A gen2 function owns a Cloud Run service of the same name: deleting the
  # function deletes it, so the service is only deleted when no function is left.
  if present gcloud functions describe "$SERVICE_NAME" --gen2 --project="$GCP_PROJECT_ID" --region="$GCP_REGION"; then
    run_cmd gcloud functions delete "$SERVICE_NAME" --gen2 --project="$GCP_PROJECT_ID" --region="$GCP_REGION" --quiet
  fi
  if present gcloud run services describe "$SERVICE_NAME" --project="$GCP_PROJECT_ID" --region="$GCP_REGION"; then
    run_cmd gcloud run services delete "$SERVICE_NAME" --project="$GCP_PROJECT_ID" --region="$GCP_REGION" --quiet
  fi
}

# Images of the image step, and of 'run' (source deploys keep theirs in the
# cloud-run-source-deploy repository).
delete_images() {
  local repository
  for repository in "$REPOSITORY" cloud-run-source-deploy; do
    if present gcloud artifacts packages describe "$SERVICE_NAME" --project="$GCP_PROJECT_ID" \
      --location="$GCP_REGION" --repository="$repository"; then
      run_cmd gcloud artifacts packages delete "$SERVICE_NAME" --project="$GCP_PROJECT_ID" \
        --location="$GCP_REGION" --repository="$repository" --quiet
    fi
  done
}

# The runtime identity function/run created (never one you named): its grant on a kept bucket, then itself.
delete_runtime_identity() {
  [[ $SERVICE_ACCOUNT == "$RUNTIME_ACCOUNT" ]] || return 0
  if present gcloud iam service-accounts describe "$SERVICE_ACCOUNT" --project="$GCP_PROJECT_ID"; then
    ((DELETE_BUCKET)) || run_cmd gcloud storage buckets remove-iam-policy-binding "gs://$BUCKET" \
      --project="$GCP_PROJECT_ID" --member="serviceAccount:$SERVICE_ACCOUNT" --role=roles/storage.objectViewer
    run_cmd gcloud iam service-accounts delete "$SERVICE_ACCOUNT" --project="$GCP_PROJECT_ID" --quiet
  fi
}

delete_bucket() {
  if ((DELETE_BUCKET)); then
    run_cmd gcloud storage rm --recursive "gs://$BUCKET" --project="$GCP_PROJECT_ID"
  else
    info "Keeping gs://$BUCKET (set DELETE_BUCKET=1 to delete it and its models)."
  fi
}

step_delete() {
  confirm_delete
  if command -v bq >/dev/null || ((DRY_RUN)); then
    delete_bigquery
  else
    info "bq not found: skipping the BigQuery remote function and connection."
  fi
  delete_serving
  delete_runtime_identity
  delete_images
  delete_bucket
}

# --- main ------------------------------------------------------------------

main() {
  local step args=()
  while (($#)); do
    case $1 in
      -h | --help) usage; exit 0 ;;
      --dry-run) DRY_RUN=1 ;;
      -*) usage_error "unknown option: $1" ;;
      *) args+=("$1") ;;
    esac
    shift
  done
  ((${#args[@]})) || usage_error "no STEP given"
  step=${args[0]}
  ENV_FILE=${ENV_FILE:-$ROOT/.env}
  load_env_file "$ENV_FILE"
  cd "$ROOT"

  case $step in
    smoke)
      ((!DRY_RUN)) || die "smoke calls the service: it has no --dry-run"
      step_smoke "${args[@]:1}"
      return
      ;;
    model | function | run | image | bigquery | delete) ;;
    *) usage_error "unknown step: $step" ;;
  esac
  ((${#args[@]} == 1)) || usage_error "$step takes no arguments"
  set_defaults
  if ((!DRY_RUN)); then
    require_gcloud
    require_auth
  fi
  "step_$step"
}

main "$@"
