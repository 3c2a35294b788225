"""model.joblib to FareModel and back, without ever running code a file names.

model.joblib is a plain pickle (protocol 5) of a FareModel: numpy arrays and plain values. The
restricted unpickler resolves only numpy's array reconstruction and the model's own classes; a
file naming any other global (os.system, builtins.eval, a scikit-learn class, ...) is refused
when that name is read, before anything it names can run (Python docs, "Restricting Globals").
`joblib.load("model.joblib")` still opens it in a notebook: joblib reads plain pickles.
"""

import hashlib
import io
import pickle

from taxifare.model import fare_model, features, long_trips, service_area, trees
from taxifare.model.fare_model import FORMAT_VERSION, FareModel

MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"
PICKLE_PROTOCOL = 5
ALLOWED_GLOBALS = {
    ("numpy._core.numeric", "_frombuffer"): None,
    ("numpy", "dtype"): None,
    (fare_model.__name__, "FareModel"): fare_model.FareModel,
    (fare_model.__name__, "FareRange"): fare_model.FareRange,
    (long_trips.__name__, "LongTrips"): long_trips.LongTrips,
    (features.__name__, "RideFeatureMap"): features.RideFeatureMap,
    (service_area.__name__, "ServiceArea"): service_area.ServiceArea,
    (trees.__name__, "TreeEnsemble"): trees.TreeEnsemble,
}
"""What a model file may name: numpy's reconstruction of plain arrays, and our model classes."""


class ModelFileError(ValueError):
    """These bytes are not a model this server can serve; the message says why, safe to show callers.

    Its __cause__, when there is one, is the underlying error ("pickle data was truncated"): for the
    operator's log, not for callers (it may quote the file's bytes)."""


class ForbiddenGlobal(ModelFileError):
    """The file names a global outside ALLOWED_GLOBALS: refused before it could run."""

    def __init__(self, module: str, name: str):
        super().__init__(f"model file refused: it names {module}.{name}, which a taxifare model never contains")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in ALLOWED_GLOBALS:
            raise ForbiddenGlobal(module, name)
        return ALLOWED_GLOBALS[(module, name)] or super().find_class(module, name)


def dumps(model: FareModel) -> bytes:
    """The bytes of model.joblib."""
    return pickle.dumps(model, protocol=PICKLE_PROTOCOL)


def loads(data: bytes) -> FareModel:
    """The FareModel in model.joblib bytes; ModelFileError (ForbiddenGlobal for foreign code) otherwise."""
    try:
        model = _RestrictedUnpickler(io.BytesIO(data)).load()
    except ModelFileError:
        raise
    except Exception as error:  # truncated or garbage bytes make the unpickler raise almost anything
        raise ModelFileError(f"model file is corrupt or not a taxifare model ({type(error).__name__})") from error
    if not isinstance(model, FareModel):
        raise ModelFileError(f"model file holds a {type(model).__name__}, not a taxifare FareModel")
    version = vars(model).get("format_version")  # the file's own: the class default would vouch for any file
    if version != FORMAT_VERSION:
        raise ModelFileError(f"model file has format version {version!r}, this "
                             f"server reads version {FORMAT_VERSION}: retrain it with this version of taxifare")
    try:
        model.check()
    except (ValueError, TypeError, AttributeError) as error:
        raise ModelFileError(f"model file is inconsistent: {error}") from error
    return model


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of bytes, the pin for MODEL_SHA256."""
    return hashlib.sha256(data).hexdigest()


def metadata_uri(model_uri: str) -> str:
    """model.json beside a model.joblib (local path or gs:// URI)."""
    return model_uri.rpartition("/")[0] + "/" + METADATA_FILE if "/" in model_uri else METADATA_FILE
