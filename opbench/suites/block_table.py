"""The `blocks` suite, the block lookup table: every distinct block of the zoo's models and of EfficientFormer's
slimming search space at the shape it runs at (opbench.lookup), on request only. Its report section predicts each
zoo model from its blocks and compares with the model measured whole (the `models` suite), less the `overhead`
suite's per-call floor.

Every block is two cases: timed hot (its id from the table) and cold (its id + case.COLD_SUFFIX: each call on
another of several copies, opbench.measure.cold), run back to back in a pass. A model's weights come from memory, as
the cold block's do; the two tables bracket it. When `models` is selected too, this suite runs in the same passes as
it (Suite.same_window), with the `overhead` floor."""

from __future__ import annotations

from opbench.lookup.table import table
from opbench.plan import BlockSum, Plan, Predictions
from opbench.suite import Suite
from opbench.suites import models, overhead
from opbench.suites.models import model_case
from opbench.zoo import ZOO

KEY = "blocks"


def predictions() -> Predictions:
    """Every zoo model as the sum of its blocks, against the model measured whole."""
    found = table(KEY)
    models = []
    for name, model in ZOO.items():
        counts: dict[str, int] = {}
        for use in found.uses[name]:
            counts[use.case.id] = counts.get(use.case.id, 0) + 1
        weights = sum(found.weight_bytes[use.case.id] for use in found.uses[name])
        models.append(BlockSum(name, model.family, model_case(name).id, tuple(counts.items()), weights))
    return Predictions(
        "Whole-model latency predicted from the blocks",
        "Each zoo model's latency predicted four ways, against the model measured whole on the same target: the "
        "hot sum (its blocks' medians, weights in cache, summed less the backend's per-call floor for every block "
        "but one: each block timed alone pays one call, the whole model one), the cold sum (the same rule over the "
        "blocks timed with their weights cold, where the run timed them), the scaled hot sum (one factor per "
        "target) and the corrected prediction (a fit of log(measured) on log(sum), weight bytes and block count); "
        "each model's scaled and corrected predictions come from fits that saw no model of its family. "
        "Each with the share within ±10% and ±5% (nn-Meter's metric), RMSPE and the mean error "
        "(positive: the backend fuses across block boundaries; negative: the whole runs slower than its parts). "
        "Per model: prediction.csv; per backend and family: prediction_summary.csv.",
        models,
        overhead.FLOOR,
    )


def plan(grid: str) -> Plan:
    p = Plan()
    for case in table(KEY).cases:
        p.add(case)
        p.add(case.cold())
    p.extras.append(predictions())
    return p


SUITE = Suite(
    key=KEY,
    title="Block lookup table",
    plan=plan,
    on_request=True,  # 184 blocks, hot and cold: `make bench ARGS="--opbench-suites blocks,models,overhead"`
    description=(
        "Every distinct block of the zoo's models and of EfficientFormer's slimming search space, at the shape it "
        "runs at (derived from the models by a forward pass with hooks), so that `opbench predict` can sum a "
        "model's latency from its blocks and `opbench slim` can search under a latency budget. Each block is timed "
        "twice: with its weights hot (called again and again) and cold (id ending in -cold: each call on another "
        "of N copies whose weights together exceed twice the last-level cache, up to 64 copies), which bracket a "
        "model's latency."
    ),
    same_window=("models", "overhead"),
    # timed as the models it predicts are, pass k of each beside pass k of the other
    timing=(("max_time", dict(models.SUITE.timing)["max_time"]),),
    passes=models.SUITE.passes,
)
