"""The fare model as it runs in the cloud: numpy, and Cloud Storage for reading and writing files.

Feature maths (geometry, New York local time), compiled tree ensembles and the FareModel that
combines them need numpy only. Two modules do I/O: loading.py turns model.joblib bytes into a
FareModel (and back) without running code a file names, and storage.py reads and writes bytes at a
local path or a gs:// URI, importing google-cloud-storage only when a gs:// URI is used (a server
with a local model never imports it). Both the HTTP function (taxifare.serving) and training
(taxifare.training) stand on this layer; it imports neither, nor scikit-learn, scipy or pandas
(tests/test_layers.py keeps it so).
"""
