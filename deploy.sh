#!/usr/bin/env bash
# Deploy the taxi-fare predictor to Google Cloud. Run ./deploy.sh --help.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [--dry-run] STEP [ARGS]

Steps:
  model      upload models/model.joblib and model.json to
             gs://$BUCKET/models/<model_version>/ and gs://$BUCKET/models/latest/
  function   deploy a Cloud Functions gen2 HTTP function (entry point: predict); it serves all traffic
  run        deploy the same function as a Cloud Run service built from source; it serves all traffic
  image      build a container image with buildpacks (gcloud builds submit --pack)
  bigquery   create BigQuery remote functions predict_fare(), predict_fare_range() and predict_fare_explain()
             calling the service
  smoke URL  check that a deployment, a tag URL or a local server answers like the API should

Rolling out (function and run alike: a gen2 function is a Cloud Run service):
  canary     deploy the current model and code as a new revision that gets no traffic, tagged
             candidate (a URL of its own), and smoke-test it there: callers see no change
  shift PERCENT
             send PERCENT of the traffic to the candidate, the rest to the revision it replaces
  promote    send all traffic to the candidate
  rollback   send all traffic back to the revision that served before (tagged stable)
  status     the revisions with traffic or a tag: share, tag URL, model version and sha256

Operating:
  monitoring an uptime check on /health, log-based metrics from the request log lines and an
             alert policy (server errors or a failing uptime check) notifying ALERT_EMAIL
  delete     delete the function/service, the runtime identity it created, image, monitoring,
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
  BQ_DATASET      taxifare     BQ_CONNECTION taxifare
  BQ_LOCATION     $GCP_REGION: where the tables you call the remote functions on live (US, EU, ...)
  RANGE_COVERAGE  80 (predict_fare_range's coverage, in percent)
  TARGET          what canary deploys: function or run (default: function if one is named $SERVICE_NAME)
  SMOKE_TOKEN     bearer token for smoke (default with PRIVATE=1: gcloud auth print-identity-token)
  EXPECT_MODEL_VERSION  smoke: the model version every answer must name (canary sets it)
  ALERT_EMAIL     monitoring: where alerts go (an email notification channel is created), or
  ALERT_CHANNEL   monitoring: an existing notification channel, projects/PROJECT/notificationChannels/ID
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
SMOKE_CALL='["2013-07-06 17:18:00", -73.950655, 40.783282, -73.984365, 40.769802, 1]'
MODEL_VERSION_HEADER=X-Model-Version
CANDIDATE_TAG=candidate
STABLE_TAG=stable

die() {
  printf 'deploy.sh: error: %s\n' "$*" >&2
  exit 1
}

info() {
  printf '%s\n' "$*" >&2
}

usage_error() {
  die "$* (see ./deploy.sh --help)"
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
  : "${TARGET:=}"
  RUNTIME_ACCOUNT=$SERVICE_NAME-runtime@$GCP_PROJECT_ID.iam.gserviceaccount.com # the one this script creates
  : "${SERVICE_ACCOUNT:=$RUNTIME_ACCOUNT}"
  : "${LABELS:=app=$SERVICE_NAME}"
  WHERE=(--project="$GCP_PROJECT_ID" --region="$GCP_REGION")
  require_flag PRIVATE
  require_flag DELETE_BUCKET
  case $TARGET in
    "" | function | run) ;;
    *) die "TARGET must be function or run, got '$TARGET'" ;;
  esac
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

# run_with_input TEXT CMD...: run CMD with TEXT on its standard input (with --dry-run print
# it as a bash here-string, so that the line still pastes into a shell).
run_with_input() {
  local input=$1
  shift
  if ((DRY_RUN)); then
    printf '%s <<< %s\n' "$(print_cmd "$@")" "$(print_cmd "$input")"
  else
    info "+ $(print_cmd "$@") <<< (${#input} characters)"
    "$@" <<<"$input"
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

# The model the server is to load: MODEL_URI (and MODEL_SHA256) when set, else model.json's.
resolve_model() {
  MODEL_VERSION=${MODEL_VERSION:-}
  [[ -n ${MODEL_URI:-} ]] || read_model_metadata
}

# The model object must be at MODEL_URI, with the bytes MODEL_SHA256 pins: otherwise the
# deploy would succeed and every request get a 503. Reads the object (about 1 MB).
check_model_object() {
  local digest
  if ((DRY_RUN)); then
    print_cmd gcloud storage cat "$MODEL_URI" --project="$GCP_PROJECT_ID"
    return
  fi
  digest=$(gcloud storage cat "$MODEL_URI" --project="$GCP_PROJECT_ID" |
    python3 -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())') ||
    die "cannot read the model at $MODEL_URI: upload it first (./deploy.sh model) or fix MODEL_URI"
  if [[ -n ${MODEL_SHA256:-} && $digest != "${MODEL_SHA256,,}" ]]; then
    die "the model at $MODEL_URI has sha256 $digest, not MODEL_SHA256 $MODEL_SHA256: the server would refuse it (./deploy.sh model uploads the right one)"
  fi
  info "model: $MODEL_URI (sha256 $digest)"
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

# MODEL_URI, MODEL_SHA256 and THREADS for the server (resolve_model first). Memory, CPU,
# concurrency and threads are set together: one request per thread.
server_env_vars() {
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
    gcloud run services describe "$SERVICE_NAME" "${WHERE[@]}" --format='value(status.url)'
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

# deploy_function [FLAG...]: gcloud functions deploy with this script's settings, then FLAGs.
deploy_function() {
  local env_vars runtime
  env_vars=$(server_env_vars)
  runtime=$(python_runtime)
  identity_flags
  run_cmd gcloud functions deploy "$SERVICE_NAME" --gen2 "${WHERE[@]}" --source=. --runtime="$runtime" \
    --entry-point="$ENTRY_POINT" --trigger-http \
    --memory="$MEMORY" --cpu="$CPU" --concurrency="$CONCURRENCY" \
    --min-instances="$MIN_INSTANCES" --max-instances="$MAX_INSTANCES" \
    --timeout="$TIMEOUT" --set-env-vars="$env_vars" --update-labels="$LABELS" "${IDENTITY[@]}" "$@"
}

# deploy_run [FLAG...]: gcloud run deploy from source with this script's settings, then FLAGs.
deploy_run() {
  local env_vars
  env_vars=$(server_env_vars)
  identity_flags
  run_cmd gcloud run deploy "$SERVICE_NAME" "${WHERE[@]}" --source=. --function="$ENTRY_POINT" \
    --memory="$MEMORY" --cpu="$CPU" --concurrency="$CONCURRENCY" --cpu-boost \
    --min-instances="$MIN_INSTANCES" --max-instances="$MAX_INSTANCES" \
    --timeout="$TIMEOUT" --set-env-vars="$env_vars" --update-labels="$LABELS" "${IDENTITY[@]}" "$@"
}

# After a plain deploy: all traffic to the new revision (a canary or a rollback pinned it to
# another one), the revision that served before tagged stable, for rollback, and no candidate
# left to promote. Other tags stay.
serve_latest() {
  local untag=()
  [[ -n $SERVING ]] || return 0 # a new service: it serves its only revision
  [[ -z $CANDIDATE ]] || untag=(--remove-tags="$CANDIDATE_TAG")
  run_cmd gcloud run services update-traffic "$SERVICE_NAME" "${WHERE[@]}" --to-latest \
    --update-tags="$STABLE_TAG=$SERVING" "${untag[@]}"
  info "$SERVING, which served before, is tagged $STABLE_TAG: ./deploy.sh rollback returns to it"
}

step_function() {
  local url
  resolve_model
  check_model_object
  read_traffic 100 optional
  ensure_runtime_identity
  deploy_function "$(auth_flag)" --serve-all-traffic-latest-revision
  serve_latest
  capture url "https://$SERVICE_NAME-PROJECT_NUMBER.$GCP_REGION.run.app" \
    gcloud functions describe "$SERVICE_NAME" --gen2 "${WHERE[@]}" --format='value(serviceConfig.uri)'
  print_next_steps "$url"
}

step_run() {
  local url
  resolve_model
  check_model_object
  read_traffic 100 optional
  ensure_runtime_identity
  deploy_run "$(auth_flag)"
  serve_latest
  service_url url
  print_next_steps "$url"
}

# --- rollout: revisions, tags and traffic -----------------------------------
#
# A gen2 function is a Cloud Run service of the same name, so both kinds of deployment roll
# out through the service's revisions. What a rollout must remember lives on the service
# itself, as two traffic tags (each also a URL of its own: https://TAG---SERVICE-HOST):
#   candidate  the revision being rolled out (canary deploys it with no traffic);
#   stable     the revision that served before it, where rollback returns.
# canary, function and run tag the revision they replace stable; rollback drops the candidate tag.

# The traffic fields of `gcloud run services describe --format=json`, one "KEY VALUE" a line:
# each revision's share summed over its routes, which revision holds which tag, and per
# revision one "ROUTE revision percent tags tag-urls" line (largest share first).
traffic_fields() {
  python3 - "$1" "$CANDIDATE_TAG" "$STABLE_TAG" <<'PY'
import json, sys

service, candidate_tag, stable_tag = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
status = service.get("status") or {}
share, tags, urls = {}, {}, {}
for route in status.get("traffic") or []:
    revision = route.get("revisionName")
    if not revision:
        continue
    share[revision] = share.get(revision, 0) + int(route.get("percent") or 0)
    if route.get("tag"):
        tags.setdefault(revision, []).append(route["tag"])
        urls.setdefault(revision, []).append(route.get("url") or "-")
owner = {tag: revision for revision, names in tags.items() for tag in names}
order = sorted(share, key=lambda revision: -share[revision])
serving = [revision for revision in order if share[revision] > 0]
fields = {"SERVICE_URL": status.get("url") or "", "LATEST_REVISION": status.get("latestCreatedRevisionName") or "",
          "SERVING": serving[0] if serving else "", "SERVING_PERCENT": share[serving[0]] if serving else 0,
          "SPLIT": len(serving)}
for prefix, tag in (("CANDIDATE", candidate_tag), ("STABLE", stable_tag)):
    revision = owner.get(tag, "")
    url = urls[revision][tags[revision].index(tag)] if revision else ""
    fields.update({prefix: revision, prefix + "_PERCENT": share.get(revision, 0), prefix + "_URL": url})
for key, value in fields.items():
    print(key, value)
for revision in order:
    print("ROUTE", revision, share[revision], ",".join(tags.get(revision, ["-"])), ",".join(urls.get(revision, ["-"])))
PY
}

# What a dry run assumes the service looks like (it reads nothing): STABLE_REVISION, tagged
# stable, has $1 percent of the traffic; CANDIDATE_REVISION, tagged candidate and the latest
# created revision, has the rest.
placeholder_service() {
  local host="$SERVICE_NAME-PROJECT_NUMBER.$GCP_REGION.run.app"
  printf '{"status": {"url": "https://%s", "latestCreatedRevisionName": "CANDIDATE_REVISION", "traffic": [' "$host"
  printf '{"revisionName": "STABLE_REVISION", "percent": %d, "tag": "%s", "url": "https://%s---%s"}, ' \
    "$1" "$STABLE_TAG" "$STABLE_TAG" "$host"
  printf '{"revisionName": "CANDIDATE_REVISION", "percent": %d, "tag": "%s", "url": "https://%s---%s"}]}}' \
    "$((100 - $1))" "$CANDIDATE_TAG" "$CANDIDATE_TAG" "$host"
}

# read_traffic DRY_RUN_STABLE_PERCENT [optional]: read the service and set SERVICE_URL,
# LATEST_REVISION, SERVING (the revision with the largest share) and SERVING_PERCENT, SPLIT
# (how many revisions have traffic), CANDIDATE and STABLE (the tagged revisions, empty if none)
# with their _PERCENT and _URL, and ROUTES. With "optional" a missing service leaves them
# empty, and a dry run assumes it is missing (creation steps assume nothing exists yet).
read_traffic() {
  local json fields key value describe=(gcloud run services describe "$SERVICE_NAME" "${WHERE[@]}" --format=json)
  SERVICE_URL="" LATEST_REVISION="" SERVING="" SERVING_PERCENT=0 SPLIT=0 ROUTES=()
  CANDIDATE="" CANDIDATE_PERCENT=0 CANDIDATE_URL="" STABLE="" STABLE_PERCENT=0
  if ((DRY_RUN)); then
    print_cmd "${describe[@]}"
    [[ ${2:-} != optional ]] || return 0
    json=$(placeholder_service "$1")
    [[ -n ${ASSUMED:-} ]] || info "(dry run: the service is not read; assumed: STABLE_REVISION ($STABLE_TAG) $1%, CANDIDATE_REVISION ($CANDIDATE_TAG) $((100 - $1))%)"
    ASSUMED=1
  elif [[ ${2:-} == optional ]]; then
    json=$("${describe[@]}" 2>/dev/null) || return 0
  else
    json=$("${describe[@]}") || die "cannot read the service $SERVICE_NAME in $GCP_REGION: deploy it first (./deploy.sh function or ./deploy.sh run)"
  fi
  fields=$(traffic_fields "$json") || die "cannot read the traffic of $SERVICE_NAME from gcloud's answer"
  while read -r key value; do
    if [[ $key == ROUTE ]]; then
      ROUTES+=("$value")
    else
      printf -v "$key" '%s' "$value"
    fi
  done <<<"$fields"
}

# "taxifare-00002-abc 90%, taxifare-00003-xyz 10%"
traffic_summary() {
  local route revision percent summary=""
  for route in "${ROUTES[@]}"; do
    read -r revision percent _ <<<"$route"
    ((percent == 0)) || summary+="${summary:+, }$revision $percent%"
  done
  printf '%s' "$summary"
}

update_traffic() {
  run_cmd gcloud run services update-traffic "$SERVICE_NAME" "${WHERE[@]}" "$@"
}

require_candidate() {
  [[ -n $CANDIDATE ]] || die "no candidate to $1: ./deploy.sh canary deploys one"
}

# TARGET, or else function when a gen2 function of that name exists, run otherwise.
choose_target() {
  [[ -z $TARGET ]] || return 0
  if present gcloud functions describe "$SERVICE_NAME" --gen2 "${WHERE[@]}"; then
    TARGET=function
  else
    TARGET=run
  fi
}

step_canary() {
  local before new
  choose_target
  read_traffic 100
  [[ -n $SERVING ]] || die "$SERVICE_NAME serves no revision yet: deploy it first (./deploy.sh function or ./deploy.sh run)"
  ((SPLIT == 1)) || die "a rollout is in progress ($(traffic_summary)): ./deploy.sh promote or ./deploy.sh rollback first"
  resolve_model
  check_model_object
  before=$SERVING
  # Pin the traffic to the serving revision, so the new one gets none, and remember it for rollback.
  update_traffic --to-revisions="$before=100" --update-tags="$STABLE_TAG=$before"
  if [[ $TARGET == function ]]; then
    deploy_function # without --serve-all-traffic-latest-revision: the pinned traffic stays
  else
    deploy_run --no-traffic --tag="$CANDIDATE_TAG"
  fi
  read_traffic 100
  if [[ $SERVING != "$before" || $SERVING_PERCENT != 100 ]]; then
    update_traffic --to-revisions="$before=100"
    die "the new revision took traffic ($(traffic_summary)): all traffic is back on $before"
  fi
  new=$LATEST_REVISION
  [[ -n $new && $new != "$before" ]] || die "the deploy created no new revision: nothing to try"
  if [[ $TARGET == function ]]; then # gcloud functions deploy cannot tag the revision it makes
    update_traffic --update-tags="$CANDIDATE_TAG=$new"
    read_traffic 100
  fi
  [[ $CANDIDATE == "$new" && -n $CANDIDATE_URL ]] || die "$new did not get the tag $CANDIDATE_TAG and its URL"
  info "candidate: $new at $CANDIDATE_URL, no traffic; $before serves 100% ($STABLE_TAG)"
  if ((DRY_RUN)); then
    info "(dry run: then ./deploy.sh smoke $CANDIDATE_URL, expecting model ${MODEL_VERSION:-of MODEL_URI})"
    return
  fi
  if ! (EXPECT_MODEL_VERSION=${EXPECT_MODEL_VERSION:-$MODEL_VERSION} step_smoke "$CANDIDATE_URL"); then
    die "the candidate failed its smoke test; it has no traffic, callers are unaffected (./deploy.sh rollback drops its tag)"
  fi
  info "Next: ./deploy.sh shift 10, then ./deploy.sh promote (or ./deploy.sh rollback)"
}

# shift takes a whole percentage 0-100.
check_percent() {
  if ! [[ $1 =~ ^[0-9]{1,3}$ ]] || ((10#$1 > 100)); then
    usage_error "shift takes the candidate's share of traffic, a whole percentage from 0 to 100, not '$1'"
  fi
}

step_shift() {
  local percent=$((10#$1))
  read_traffic 90
  require_candidate "shift traffic to"
  [[ -n $STABLE && $STABLE != "$CANDIDATE" ]] ||
    die "no revision tagged $STABLE_TAG to share the traffic with: ./deploy.sh canary tags the serving one"
  update_traffic --to-revisions="$CANDIDATE=$percent,$STABLE=$((100 - percent))"
  info "$CANDIDATE ($CANDIDATE_TAG) now gets $percent% of the traffic, $STABLE ($STABLE_TAG) $((100 - percent))%"
}

step_promote() {
  read_traffic 90
  require_candidate promote
  ((CANDIDATE_PERCENT < 100)) || die "nothing to promote: $CANDIDATE ($CANDIDATE_TAG) already serves 100%"
  update_traffic --to-revisions="$CANDIDATE=100"
  info "$CANDIDATE ($CANDIDATE_TAG) serves 100%; ./deploy.sh rollback returns to ${STABLE:-the stable revision}"
}

step_rollback() {
  local untag=()
  read_traffic 90
  [[ -n $STABLE ]] || die "nothing to roll back to: no revision is tagged $STABLE_TAG (canary, function and run tag the one they replace)"
  ((STABLE_PERCENT < 100)) || die "nothing to roll back to: $STABLE ($STABLE_TAG) already serves 100%"
  [[ -z $CANDIDATE ]] || untag=(--remove-tags="$CANDIDATE_TAG")
  update_traffic --to-revisions="$STABLE=100" "${untag[@]}"
  info "$STABLE ($STABLE_TAG) serves 100%${CANDIDATE:+; $CANDIDATE is no longer the candidate}"
}

# "VERSION SHA256" of the model a revision serves, from its MODEL_URI and MODEL_SHA256.
revision_model() {
  python3 - "$1" <<'PY'
import json, sys

revision = json.loads(sys.argv[1])
containers = (revision.get("spec") or {}).get("containers") or [{}]
env = {item.get("name"): item.get("value", "") for item in containers[0].get("env") or []}
uri = env.get("MODEL_URI", "")
parts = uri.rstrip("/").split("/")
print(parts[-2] if len(parts) >= 2 and parts[-1] == "model.joblib" else uri or "-", env.get("MODEL_SHA256") or "-")
PY
}

step_status() {
  local route revision percent tags urls json model
  read_traffic 90
  ((DRY_RUN)) || printf '%s in %s: %s\n%-28s %7s  %-17s %-26s %-17s %s\n' "$SERVICE_NAME" "$GCP_REGION" \
    "$SERVICE_URL" revision traffic tag "model version" "model sha256" "tag URL"
  for route in "${ROUTES[@]}"; do
    read -r revision percent tags urls <<<"$route"
    capture json "{\"spec\": {\"containers\": [{\"env\": [{\"name\": \"MODEL_URI\", \"value\": \"gs://$BUCKET/models/MODEL_VERSION/model.joblib\"}]}]}}" \
      gcloud run revisions describe "$revision" "${WHERE[@]}" --format=json
    model=$(revision_model "$json")
    ((DRY_RUN)) || printf '%-28s %6s%%  %-17s %-26s %-17s %s\n' "$revision" "$percent" "$tags" "${model%% *}" \
      "${model#* }" "$urls"
  done
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
  run_cmd gcloud builds submit . "${WHERE[@]}" \
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
# for through user_defined_context (RANGE_COVERAGE, default 80);
# predict_fare_explain returns JSON {"fare": ..., "breakdown": {"base": ...,
# "distance": ..., ...}}, asked for with user_defined_context explain=true.
ROUTINES=(predict_fare predict_fare_range predict_fare_explain)

routine_id() {
  printf '%s.%s.%s' "$GCP_PROJECT_ID" "$BQ_DATASET" "$1"
}

# remote_function_sql ROUTINE URL
remote_function_sql() {
  local returns=FLOAT64 context=""
  case $1 in
    predict_fare_range)
      returns=JSON
      context=", user_defined_context = [(\"range\", \"$RANGE_COVERAGE\")]"
      ;;
    predict_fare_explain)
      returns=JSON
      context=', user_defined_context = [("explain", "true")]'
      ;;
  esac
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
  run_cmd gcloud run services add-iam-policy-binding "$SERVICE_NAME" "${WHERE[@]}" \
    --member="serviceAccount:$CONNECTION_SA" --role=roles/run.invoker
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
  info "  with its breakdown: \`$(routine_id predict_fare_explain)\`(...) returns JSON; read a part with"
  info "  JSON_VALUE(result, '\$.breakdown.distance') (the base and each group add up to \$.fare, cent for cent)"
  info "  BQ_LOCATION ($BQ_LOCATION) must be where the tables you call it on live (US for bigquery-public-data)"
}

# --- smoke -----------------------------------------------------------------

SMOKE_FAILURES=0
SMOKE_CHECKS=0

# smoke_check NAME KIND STATUS METHOD URL [JSON_BODY]: call the URL and check the answer's status,
# body (KIND: health, greeting, fare, range, explain, predictions, replies, range-replies, error) and the
# X-Model-Version header.
smoke_check() {
  local name=$1 kind=$2 expected=$3 method=$4 url=$5 body=${6:-} response status problem version
  local args=(--silent --show-error --max-time "${SMOKE_MAX_TIME:-30}" --request "$method"
    --dump-header "$SMOKE_HEADERS" --write-out '\n%{http_code}')
  [[ -z $SMOKE_AUTH ]] || args+=(--header "Authorization: Bearer $SMOKE_AUTH")
  [[ -z $body ]] || args+=(--header 'Content-Type: application/json' --data "$body")
  SMOKE_CHECKS=$((SMOKE_CHECKS + 1))
  if ! response=$(curl "${args[@]}" "$url" 2>&1); then
    problem="request failed: ${response%%$'\n'*}" # curl's one-line error, without the status it could not get
  else
    status=${response##*$'\n'}
    response=${response%$'\n'*}
    version=$(tr -d '\r' <"$SMOKE_HEADERS" | sed -n 's/^[Xx]-[Mm]odel-[Vv]ersion:[[:space:]]*//p' | tail -n 1)
    if [[ $status != "$expected" ]]; then
      problem="HTTP $status, expected $expected: ${response:0:300}"
    else
      problem=$(smoke_validate "$kind" "$response" "$version")
    fi
  fi
  if [[ -z $problem ]]; then
    printf 'ok   %s\n' "$name"
  else
    printf 'FAIL %s: %s\n' "$name" "$problem"
    SMOKE_FAILURES=$((SMOKE_FAILURES + 1))
  fi
}

# Print what is wrong with an answer (its JSON body and X-Model-Version), nothing when it is right.
smoke_validate() {
  python3 - "$1" "$2" "$3" "${EXPECT_MODEL_VERSION:-}" "$MODEL_VERSION_HEADER" <<'PY'
import json, math, re, sys

kind, text, header, expected_version, header_name = sys.argv[1:]

def is_fare(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0

def is_range(x):
    if not (isinstance(x, dict) and list(x) == ["fare", "range"] and is_fare(x["fare"])):
        return False
    r = x["range"]
    return (isinstance(r, dict) and r.get("coverage") == 80 and is_fare(r.get("low")) and is_fare(r.get("high"))
            and r["low"] <= x["fare"] <= r["high"])

def is_explained(x):
    """A fare and its breakdown: a base and the groups, whose cents add up to the fare's."""
    if not (isinstance(x, dict) and list(x) == ["fare", "breakdown"] and is_fare(x["fare"])):
        return False
    parts = x["breakdown"]
    return (isinstance(parts, dict) and "base" in parts and len(parts) > 1
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in parts.values())
            and sum(round(v * 100) for v in parts.values()) == round(x["fare"] * 100))

def two(key, check):
    return lambda a: (isinstance(a, dict) and list(a) == [key] and isinstance(a[key], list) and len(a[key]) == 2
                      and all(check(x) for x in a[key]))

EXPECTED = {
    "health": ('{"status": "ok", "model_version": ..., "model_sha256": <64 hex>}',
               lambda a: isinstance(a, dict) and a.get("status") == "ok" and isinstance(a.get("model_version"), str)
               and bool(a["model_version"]) and re.fullmatch("[0-9a-f]{64}", str(a.get("model_sha256"))) is not None),
    "greeting": ('{"greeting": "Hello"}', lambda a: a == {"greeting": "Hello"}),
    "fare": ('{"fare": <positive number>}', lambda a: isinstance(a, dict) and list(a) == ["fare"] and is_fare(a["fare"])),
    "range": ('{"fare": f, "range": {"coverage": 80, "low": <= f, "high": >= f}}', is_range),
    "explain": ('{"fare": f, "breakdown": {"base": ..., group: ...}} whose cents add up to f', is_explained),
    "predictions": ('{"predictions": [<positive number>, <positive number>]}', two("predictions", is_fare)),
    "replies": ('{"replies": [<positive number>, <positive number>]}', two("replies", is_fare)),
    "range-replies": ('{"replies": [<fare with range>, <fare with range>]}', two("replies", is_range)),
    "error": ('{"error": "...", "details": {"pickup_latitude": "..."}}',
              lambda a: isinstance(a, dict) and isinstance(a.get("error"), str)
              and isinstance(a.get("details"), dict) and isinstance(a["details"].get("pickup_latitude"), str)),
}
description, check = EXPECTED[kind]
try:
    answer = json.loads(text)
except ValueError:
    print("not JSON: " + text[:300])
    sys.exit()
if not check(answer):
    print("expected " + description + ", got " + text[:300])
elif not header:
    print(f"no {header_name} header: the answer does not say which model gave it")
elif expected_version and header != expected_version:
    print(f"{header_name} is {header}, expected {expected_version}")
elif kind == "health" and expected_version and answer["model_version"] != expected_version:
    print(f"serves model {answer['model_version']}, expected {expected_version}")
PY
}

step_smoke() {
  local base=${1:-} rides="[$SMOKE_INSTANCE, $SMOKE_INSTANCE]" calls="[$SMOKE_CALL, $SMOKE_CALL]"
  [[ -n $base && $# -eq 1 ]] || usage_error "smoke needs exactly one argument: the service URL (or a tag URL)"
  base=${base%/}
  SMOKE_AUTH=${SMOKE_TOKEN:-}
  if [[ -z $SMOKE_AUTH && ${PRIVATE:-0} == 1 ]]; then
    require_gcloud
    SMOKE_AUTH=$(gcloud auth print-identity-token) ||
      die "cannot get an identity token: run 'gcloud auth login' or set SMOKE_TOKEN"
  fi
  SMOKE_HEADERS=$(mktemp)
  trap 'rm -f "$SMOKE_HEADERS"' EXIT
  smoke_check "GET  /health" health 200 GET "$base/health"
  smoke_check "GET  /" greeting 200 GET "$base/"
  smoke_check "GET  /predict" fare 200 GET "$base/predict?$SMOKE_QUERY"
  smoke_check "GET  /predict range=80" range 200 GET "$base/predict?$SMOKE_QUERY&range=80"
  smoke_check "GET  /predict explain=1" explain 200 GET "$base/predict?$SMOKE_QUERY&explain=1"
  smoke_check "POST / one ride" fare 200 POST "$base/" "$SMOKE_INSTANCE"
  smoke_check "POST / instances" predictions 200 POST "$base/" "{\"instances\": $rides}"
  smoke_check "POST / BigQuery calls" replies 200 POST "$base/" "{\"requestId\": \"smoke\", \"calls\": $calls}"
  smoke_check "POST / BigQuery calls, range" range-replies 200 POST "$base/" \
    "{\"requestId\": \"smoke\", \"userDefinedContext\": {\"range\": \"80\"}, \"calls\": $calls}"
  smoke_check "GET  /predict error body" error 400 GET "$base/predict?${SMOKE_QUERY/pickup_latitude=40.783282/pickup_latitude=north}"
  ((SMOKE_FAILURES == 0)) || die "smoke test of $base FAILED: $SMOKE_FAILURES of $SMOKE_CHECKS checks"
  printf 'smoke test of %s passed%s\n' "$base" "${EXPECT_MODEL_VERSION:+ (model $EXPECT_MODEL_VERSION)}"
}

# --- monitoring ------------------------------------------------------------
#
# The request log lines (taxifare/serving/json_log.py) reach Cloud Logging as entries of
# run.googleapis.com/stdout whose httpRequest (status, latency) is lifted out of the JSON; the
# model version and the rides priced stay in jsonPayload.

UPTIME_PERIOD_MINUTES=5

uptime_name() { printf '%s /health' "$SERVICE_NAME"; }
policy_name() { printf '%s: down or failing' "$SERVICE_NAME"; }
channel_name() { printf '%s alerts' "$SERVICE_NAME"; }
log_metrics() { printf '%s\n' "$SERVICE_NAME-requests" "$SERVICE_NAME-latency" "$SERVICE_NAME-rides"; }

# log_metric_config METRIC: the LogMetric (JSON) for one of log_metrics' names.
log_metric_config() {
  python3 - "$1" "$SERVICE_NAME" <<'PY'
import json, sys

name, service = sys.argv[1:]
kind = name[len(service) + 1:]
lines = (f'resource.type="cloud_run_revision" AND resource.labels.service_name="{service}" '
         'AND log_id("run.googleapis.com/stdout") AND httpRequest.status>0')
version = {"key": "model_version", "valueType": "STRING", "description": "model.json's model_version"}
status = {"key": "status", "valueType": "STRING", "description": "HTTP status"}
extract = {"model_version": "EXTRACT(jsonPayload.model_version)", "status": "EXTRACT(httpRequest.status)"}
metrics = {
    "requests": {"description": f"{service}: requests by HTTP status and model version",
                 "metricDescriptor": {"metricKind": "DELTA", "valueType": "INT64", "unit": "1",
                                      "labels": [status, version]}},
    "latency": {"description": f"{service}: seconds from request to answer inside the function",
                "metricDescriptor": {"metricKind": "DELTA", "valueType": "DISTRIBUTION", "unit": "s",
                                     "labels": [status, version]},
                "valueExtractor": 'REGEXP_EXTRACT(httpRequest.latency, "([0-9.]+)s")',
                "bucketOptions": {"exponentialBuckets": {"numFiniteBuckets": 40, "growthFactor": 1.4, "scale": 0.0001}}},
    "rides": {"description": f"{service}: rides priced per answered request, by model version",
              "filter": lines + " AND jsonPayload.rows>0",
              "metricDescriptor": {"metricKind": "DELTA", "valueType": "DISTRIBUTION", "unit": "1", "labels": [version]},
              "valueExtractor": "EXTRACT(jsonPayload.rows)",
              "bucketOptions": {"exponentialBuckets": {"numFiniteBuckets": 15, "growthFactor": 2, "scale": 1}}},
}
metric = {"name": name, "filter": lines, **metrics[kind]}
metric["labelExtractors"] = {label["key"]: extract[label["key"]] for label in metric["metricDescriptor"]["labels"]}
print(json.dumps(metric))
PY
}

# alert_policy UPTIME_CHECK_ID CHANNEL: the alert policy (JSON): the uptime check failing from
# more than one region, or any 5xx answer from the service (Cloud Run's own request count, so
# crashes and overload count too).
alert_policy() {
  python3 - "$1" "$2" "$SERVICE_NAME" "$(policy_name)" "$LABELS" <<'PY'
import json, sys

check_id, channel, service, name, labels = sys.argv[1:]
uptime = {
    "filter": f'metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND resource.type="uptime_url" '
              f'AND metric.label.check_id="{check_id}"',
    "aggregations": [{"alignmentPeriod": "1200s", "perSeriesAligner": "ALIGN_NEXT_OLDER",
                      "crossSeriesReducer": "REDUCE_COUNT_FALSE", "groupByFields": ["resource.label.*"]}],
    "comparison": "COMPARISON_GT", "thresholdValue": 1, "duration": "60s", "trigger": {"count": 1}}
errors = {
    "filter": f'metric.type="run.googleapis.com/request_count" AND resource.type="cloud_run_revision" '
              f'AND resource.label.service_name="{service}" AND metric.label.response_code_class="5xx"',
    "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM", "crossSeriesReducer": "REDUCE_SUM"}],
    "comparison": "COMPARISON_GT", "thresholdValue": 0, "duration": "0s", "trigger": {"count": 1}}
print(json.dumps({
    "displayName": name, "combiner": "OR",
    "conditions": [{"displayName": "/health uptime check failing", "conditionThreshold": uptime},
                   {"displayName": "5xx answers", "conditionThreshold": errors}],
    "notificationChannels": [channel],
    "documentation": {"mimeType": "text/markdown", "content": (
        f"{service} is down or answering 5xx. `./deploy.sh status` shows which revisions and models serve; "
        "`./deploy.sh rollback` returns to the revision that served before; the logs name each failing request.")},
    "userLabels": dict(label.split("=", 1) for label in labels.split(",") if "=" in label)}))
PY
}

# Set CHANNEL: ALERT_CHANNEL, or an email channel for ALERT_EMAIL (created unless one exists).
ensure_channel() {
  local email=${ALERT_EMAIL:-}
  if [[ -n ${ALERT_CHANNEL:-} ]]; then
    CHANNEL=$ALERT_CHANNEL
    return
  fi
  if [[ -z $email ]]; then
    ((DRY_RUN)) || die "monitoring needs somewhere to send alerts: set ALERT_EMAIL=you@example.com (or ALERT_CHANNEL)"
    email=you@example.com
    info "No ALERT_EMAIL set: the commands below use the placeholder $email."
  fi
  capture CHANNEL "" gcloud beta monitoring channels list --project="$GCP_PROJECT_ID" \
    --filter="type=\"email\" AND labels.email_address=\"$email\"" --format='value(name)'
  CHANNEL=${CHANNEL%%$'\n'*}
  [[ -z $CHANNEL ]] || return 0
  capture CHANNEL "projects/$GCP_PROJECT_ID/notificationChannels/CHANNEL_ID" \
    gcloud beta monitoring channels create --project="$GCP_PROJECT_ID" --display-name="$(channel_name)" \
    --type=email --channel-labels="email_address=$email" --user-labels="$LABELS" --format='value(name)'
}

ensure_log_metrics() {
  local metric
  for metric in $(log_metrics); do
    if missing gcloud logging metrics describe "$metric" --project="$GCP_PROJECT_ID"; then
      run_with_input "$(log_metric_config "$metric")" \
        gcloud logging metrics create "$metric" --project="$GCP_PROJECT_ID" --config-from-file=-
    else
      run_with_input "$(log_metric_config "$metric")" \
        gcloud logging metrics update "$metric" --project="$GCP_PROJECT_ID" --config-from-file=-
    fi
  done
}

# Set CHECK_ID to the uptime check on the service's /health (created unless it exists). A
# private service is called with an identity token of the Monitoring service agent, which is
# granted the invoker role.
ensure_uptime_check() {
  local url host name auth=() number
  service_url url
  host=${url#https://}
  capture name "" gcloud monitoring uptime list-configs --project="$GCP_PROJECT_ID" \
    --filter="displayName=\"$(uptime_name)\"" --format='value(name)'
  if [[ -z $name ]]; then
    if ((PRIVATE)); then
      capture number PROJECT_NUMBER gcloud projects describe "$GCP_PROJECT_ID" --format='value(projectNumber)'
      run_cmd gcloud run services add-iam-policy-binding "$SERVICE_NAME" "${WHERE[@]}" --role=roles/run.invoker \
        --member="serviceAccount:service-$number@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
      auth=(--service-agent-auth=oidc-token)
    fi
    capture name "projects/$GCP_PROJECT_ID/uptimeCheckConfigs/UPTIME_CHECK_ID" \
      gcloud monitoring uptime create "$(uptime_name)" --project="$GCP_PROJECT_ID" --resource-type=uptime-url \
      --resource-labels="host=${host%%/*},project_id=$GCP_PROJECT_ID" --protocol=https --path=/health \
      --request-method=get --status-classes=2xx --period="$UPTIME_PERIOD_MINUTES" --timeout=10 \
      --user-labels="$LABELS" "${auth[@]}" --format='value(name)'
  fi
  name=${name%%$'\n'*}
  CHECK_ID=${name##*/}
}

step_monitoring() {
  local policy
  ((DRY_RUN)) || gcloud alpha --help >/dev/null 2>&1 ||
    die "alert policies need gcloud's alpha commands: gcloud components install alpha"
  ensure_channel
  ensure_log_metrics
  ensure_uptime_check
  capture policy "" gcloud alpha monitoring policies list --project="$GCP_PROJECT_ID" \
    --filter="displayName=\"$(policy_name)\"" --format='value(name)'
  if [[ -z $policy ]]; then
    run_cmd gcloud alpha monitoring policies create --project="$GCP_PROJECT_ID" \
      --policy="$(alert_policy "$CHECK_ID" "$CHANNEL")"
  else
    run_cmd gcloud alpha monitoring policies update "${policy%%$'\n'*}" --project="$GCP_PROJECT_ID" \
      --policy="$(alert_policy "$CHECK_ID" "$CHANNEL")"
  fi
  info "Alerts go to $CHANNEL. Metrics: logging.googleapis.com/user/{$(log_metrics | paste -sd, -)} in Metrics Explorer"
  info "(by model version during a rollout); the uptime check calls /health every $UPTIME_PERIOD_MINUTES minutes."
}

# --- delete ----------------------------------------------------------------

confirm_delete() {
  local answer
  ((!DRY_RUN)) && [[ -t 0 ]] || return 0
  read -r -p "Delete $SERVICE_NAME (function/service, its runtime identity, image, monitoring, BigQuery remote functions and connection) in $GCP_PROJECT_ID? [y/N] " answer
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
  if present gcloud functions describe "$SERVICE_NAME" --gen2 "${WHERE[@]}"; then
    run_cmd gcloud functions delete "$SERVICE_NAME" --gen2 "${WHERE[@]}" --quiet
  fi
  if present gcloud run services describe "$SERVICE_NAME" "${WHERE[@]}"; then
    run_cmd gcloud run services delete "$SERVICE_NAME" "${WHERE[@]}" --quiet
  fi
}

# delete_listed PLACEHOLDER LIST_CMD... -- DELETE_CMD...: run DELETE_CMD NAME --quiet for
# every name LIST_CMD prints (a dry run assumes one, PLACEHOLDER).
delete_listed() {
  local found names name list=() placeholder=$1
  shift
  while [[ $1 != -- ]]; do list+=("$1") && shift; done
  shift
  capture found "$placeholder" "${list[@]}"
  mapfile -t names <<<"$found"
  for name in "${names[@]}"; do
    [[ -z $name ]] || run_cmd "$@" "$name" --project="$GCP_PROJECT_ID" --quiet
  done
}

# The alert policy, uptime check, log-based metrics and email channel of monitoring.
delete_monitoring() {
  local metric
  if ((DRY_RUN)) || gcloud alpha --help >/dev/null 2>&1; then
    delete_listed "projects/$GCP_PROJECT_ID/alertPolicies/POLICY_ID" \
      gcloud alpha monitoring policies list --project="$GCP_PROJECT_ID" \
      --filter="displayName=\"$(policy_name)\"" --format='value(name)' -- gcloud alpha monitoring policies delete
  else
    info "gcloud alpha not installed: delete the alert policy '$(policy_name)' in the console."
  fi
  delete_listed "projects/$GCP_PROJECT_ID/uptimeCheckConfigs/UPTIME_CHECK_ID" \
    gcloud monitoring uptime list-configs --project="$GCP_PROJECT_ID" \
    --filter="displayName=\"$(uptime_name)\"" --format='value(name)' -- gcloud monitoring uptime delete
  for metric in $(log_metrics); do
    if present gcloud logging metrics describe "$metric" --project="$GCP_PROJECT_ID"; then
      run_cmd gcloud logging metrics delete "$metric" --project="$GCP_PROJECT_ID" --quiet
    fi
  done
  delete_listed "projects/$GCP_PROJECT_ID/notificationChannels/CHANNEL_ID" \
    gcloud beta monitoring channels list --project="$GCP_PROJECT_ID" \
    --filter="displayName=\"$(channel_name)\"" --format='value(name)' -- gcloud beta monitoring channels delete
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
  delete_monitoring
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
      -[0-9]*) args+=("$1") ;; # a negative number, for shift to refuse by name
      -*) usage_error "unknown option: $1" ;;
      *) args+=("$1") ;;
    esac
    shift
  done
  if ((${#args[@]} == 0)); then
    usage >&2
    die "no STEP given"
  fi
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
    shift)
      ((${#args[@]} == 2)) || usage_error "shift takes one argument: the candidate's share of traffic, 0 to 100"
      check_percent "${args[1]}"
      ;;
    model | function | run | image | bigquery | canary | promote | rollback | status | monitoring | delete)
      ((${#args[@]} == 1)) || usage_error "$step takes no arguments"
      ;;
    *) usage_error "unknown step: $step" ;;
  esac
  set_defaults
  if ((!DRY_RUN)); then
    require_gcloud
    require_auth
  fi
  "step_$step" "${args[@]:1}"
}

main "$@"
