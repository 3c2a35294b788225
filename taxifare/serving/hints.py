"""Which name a caller probably meant: the "did you mean ...?" behind every hint about a key or field.

One function serves ride fields ("passengers" -> passenger_count), short aliases ("lng1" -> lon1),
options ("rnage" -> range) and envelope keys ("instance" -> instances). Names are compared once
normalised (case, separators, "lng" for "lon"), by difflib's ratio or, for names of 4 characters
or more, by how much of the name starts the candidate ("passengers" -> "passenger_count").
Hints are computed only for requests already refused, or for keys no ride or envelope defines.
"""

import difflib
import os
import re
from functools import lru_cache

HINT_CUTOFF = 0.75
"""Similarity for a hint on a request refused anyway: "passengers" ~ passenger_count scores 0.9."""
REFUSAL_CUTOFF = 0.8
"""Similarity that makes an unknown ride field a misspelt option, refused: "rnage" ~ range scores 0.8,
while ride data's own extra fields stay far below it ("key" 0.25, "rate" 0.67, "age" 0.75, "change" 0.73)."""
MIN_PREFIX_CHARS = 4
"""A name this long or longer may match by starting the candidate ("pass" -> passenger_count); "r" may not."""
SEPARATORS = re.compile(r"[^0-9a-z]")
SYNONYMS = (("lng", "lon"),)
"""Spellings of the same word: Google Maps and Leaflet say lng where the bootcamp says lon."""
CACHED_NAMES = 4096
"""Distinct (name, candidates) pairs remembered: a batch repeats the same extra field in every row."""


def normalised(name: str) -> str:
    """`name` as compared: lower case, no separators, synonyms spelt one way."""
    text = SEPARATORS.sub("", name.casefold())
    for spelling, canonical in SYNONYMS:
        text = text.replace(spelling, canonical)
    return text


def _similarity(given: str, candidate: str) -> float:
    ratio = difflib.SequenceMatcher(None, given, candidate).ratio()
    if len(given) < MIN_PREFIX_CHARS:
        return ratio
    return max(ratio, len(os.path.commonprefix([given, candidate])) / len(given))


@lru_cache(maxsize=CACHED_NAMES)
def closest(name: str, candidates: tuple[str, ...], cutoff: float = HINT_CUTOFF) -> str | None:
    """The candidate `name` most likely means, or None when none is similar enough (ties: the first)."""
    given = normalised(name)
    if not given:
        return None
    scores = [(_similarity(given, normalised(candidate)), -rank, candidate)
              for rank, candidate in enumerate(candidates)]
    score, _, best = max(scores)
    return best if score >= cutoff else None
