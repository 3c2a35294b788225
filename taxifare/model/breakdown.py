"""Why a ride costs what it does: its fare as a base plus what each group of features adds, in dollars and cents.

FareModel.explain gives each engineered feature's exact contribution (taxifare.model.tree_shap); here
they are summed into the groups a rider understands (features.GROUPS, one group per feature, kept
beside the feature maths) and rounded so that the cents shown add up to the fare shown.

Rounding: the fare is rounded to the cent as every answer rounds it; each part (the base, then each
group) is first rounded down to the cent, and the cents still missing to reach the fare's go, one
each, to the parts that lost the most in rounding down (the largest remainders; ties to the part
listed first). So no part moves by a cent or more, and the parts always add up to the fare exactly.
"""

from dataclasses import dataclass

import numpy as np

from taxifare.model.features import GROUPS

BASE = "base"
"""What a ride's model starts from: its average fare over the rides it learned from."""
PARTS = (BASE, *GROUPS)
"""A breakdown's parts, in the order answers list them."""


@dataclass(frozen=True, eq=False)
class FareExplanation:
    """Rides' fares, each = base + the sum of its features' contributions (to 1e-9 dollars).

    fares: the fares `FareModel.predict` gives, shape (n,).
    base: what the model that priced each ride starts from, shape (n,).
    contributions: what each engineered feature adds to each fare, shape (n, n_features).
    groups: the group (features.GROUPS) of each feature.
    """

    fares: np.ndarray
    base: np.ndarray
    contributions: np.ndarray
    groups: tuple[str, ...]

    def by_group(self) -> np.ndarray:
        """What each group adds to each fare, dollars, shape (n, len(GROUPS)), in GROUPS order."""
        members = np.array([[group == name for name in GROUPS] for group in self.groups], dtype=np.float64)
        return self.contributions @ members

    def cents(self) -> np.ndarray:
        """Each part (PARTS: the base, then each group) in whole cents; each row adds up to the fare's cents."""
        return split_cents(np.column_stack([self.base, self.by_group()]), np.rint(self.fares * 100))

    def breakdowns(self) -> list[dict[str, float]]:
        """{"base": 11.3, "distance": 29.1, ...} for each ride: dollars to the cent, adding up to the rounded fare."""
        return [dict(zip(PARTS, row, strict=True)) for row in (self.cents() / 100).tolist()]

    def importance(self) -> dict[str, float]:
        """The mean absolute dollars each group adds to these fares, most first: what matters most overall."""
        means = np.abs(self.by_group()).mean(axis=0)
        return {GROUPS[i]: round(float(means[i]), 2) for i in np.argsort(-means, kind="stable")}


def split_cents(dollars: np.ndarray, total_cents: np.ndarray) -> np.ndarray:
    """Each row's parts in whole cents, adding up to its total: rounded down, then largest remainders up.

    The parts must add up to the total to within a cent (a breakdown's do, to 1e-9 dollars).
    """
    exact = dollars * 100
    cents = np.floor(exact)
    missing = total_cents - cents.sum(axis=1)
    rank = np.argsort(np.argsort(cents - exact, axis=1, kind="stable"), axis=1, kind="stable")
    return (cents + (rank < missing[:, None])).astype(np.int64)
