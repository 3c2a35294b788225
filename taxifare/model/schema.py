"""The ride schema shared by training data, the model's input and the request validator.

One place defines what a ride is, so the data we clean for training and the requests we
accept for prediction can never disagree about names or the service area.
"""

PICKUP_DATETIME = "pickup_datetime"
PICKUP_LONGITUDE = "pickup_longitude"
PICKUP_LATITUDE = "pickup_latitude"
DROPOFF_LONGITUDE = "dropoff_longitude"
DROPOFF_LATITUDE = "dropoff_latitude"
PASSENGER_COUNT = "passenger_count"
FARE = "fare_amount"
KEY = "key"

COORDINATE_COLUMNS = (PICKUP_LONGITUDE, PICKUP_LATITUDE, DROPOFF_LONGITUDE, DROPOFF_LATITUDE)
INPUT_COLUMNS = (PICKUP_DATETIME, *COORDINATE_COLUMNS, PASSENGER_COUNT)
"""The six columns the model reads, in the order of BigQuery remote-function calls."""

CSV_COLUMNS = (KEY, FARE, *INPUT_COLUMNS)
"""The Kaggle "New York City Taxi Fare Prediction" train.csv schema."""
UTC_SUFFIX = " UTC"
"""How the Kaggle files mark their times as UTC ("2013-07-06 21:18:00 UTC"); requests may use it too."""

START_FARE = 2.5
"""The meter's initial charge, 2009-2015 (the data's years): no real fare is lower, so no fare range goes
below it, and training data under it is a defect."""

LATITUDE_RANGE = (40.0, 42.0)
LONGITUDE_RANGE = (-74.3, -72.9)
"""The service area: a box around New York City and its airports (EWR, JFK, LGA included)."""

PASSENGER_RANGE = (1, 8)

TIMEZONE = "America/New_York"
"""Riders' clocks: naive request times, and the model's hour/weekday/month features, are New York time."""

RATE_CHANGE_DATE = "2012-09-04"
"""NYC's Taxi and Limousine Commission raised metered rates on this (local) date, by about 17%."""
