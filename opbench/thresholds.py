"""Every threshold a verdict uses, in one place. The report prints this table under "Method".

A ratio decides a verdict only through its 95% confidence interval: an interval wholly on one side of its
threshold decides, an interval that straddles it leaves the verdict inconclusive. A point estimate (imported
median-only numbers) decides by its value and is marked as such wherever it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    key: str
    value: float
    meaning: str


THRESHOLDS: dict[str, Threshold] = {
    t.key: t
    for t in (
        Threshold(
            "obs1.per_mac_ratio",
            1.0,
            "Obs 1 holds when the large-kernel patch embedding takes more time per MAC than the 3x3 stem it is "
            "compared with (geometric mean over the DeiT-S, DeiT-T and PoolFormer comparisons): interval above this.",
        ),
        Threshold(
            "obs2.reshape_share",
            0.05,
            "Obs 2, consistent dimension matters: in the Meta3D stage with 4D<->3D reshapes around every block, the "
            "reshapes (its time minus the same stage kept 3D) must take more than this share of the stage's time.",
        ),
        Threshold(
            "obs2.mhsa_per_mac_ratio",
            2.0,
            "Obs 2, MHSA not a bottleneck: the Meta3D (MHSA) block's time per MAC against the Meta4D (pool) block's "
            "at 7x7 must stay below this.",
        ),
        Threshold(
            "obs3.ratio",
            1.0,
            "Obs 3 holds when LN-Linear and GN-Conv are each slower than Conv-BN (geometric mean over stage shapes, "
            "projection and MLP): both intervals above this.",
        ),
        Threshold(
            "obs4.difference",
            1.10,
            "Obs 4 holds when, for some activation, its latency relative to ReLU differs between two (device, "
            "backend) pairs by more than this factor, the 95% interval of that difference included, or when two "
            "activations swap order with disjoint intervals on both pairs. It does not hold when every such "
            "difference stays within this factor, interval included.",
        ),
    )
}


def value(key: str) -> float:
    return THRESHOLDS[key].value
