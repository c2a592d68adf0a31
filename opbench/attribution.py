"""Profiles: where a whole model's time goes on one backend, attributed to the categories of the paper's argument.

A profile is taken in a pass of its own, never mixed into timed latency: the backend runs the case under its
runtime's profiler (`Backend.profile`, one implementation per backend file) and returns one `OpRow` per runtime
operator (a kernel, a graph node, an aten op), averaged over the profiled runs. `categorize` attributes each row
to one of `CATEGORIES`; `breakdown` sums them and compares the sum with the end-to-end median measured without
the profiler (coverage = profiled / end-to-end; near 1 means the rows account for the latency).

The naming contract of the models (opbench/zoo/): the stem or patch embedding is attribute `stem`,
downsampling layers live under a path component `downsample`, the classifier (final norm, pooling, heads) under
`head`, token mixers under `token_mixer`, MLPs under `mlp`. A row's `scope` is the module path of the innermost
module the runtime op came from, as far as the backend can recover it ("" when it cannot).

The rule set of `categorize`, first match wins:
1. Op-type overrides, whatever the scope: data movement (reshape, view, transpose, permute, flatten, copy, split,
   slice, concat, layout reorders, precision converts) -> reshape; activations and norms that the runtime kept as
   their own ops (Relu, Gelu, HardSwish, ..., BatchNormalization, LayerNorm, MVN, ...) -> activation,
   normalization.
2. Path components of the scope: `stem` -> stem, `downsample` -> downsampling, `head` -> head.
3. The innermost module class, then the op type: norm classes -> normalization and activation classes ->
   activation (unless the op is a convolution or matmul that absorbed them); Linear, 1x1 convolutions and
   Gemm / FullyConnected ops -> projection; convolutions with a kernel > 1 (spatial, depthwise), pooling,
   attention classes, softmax and batched matmuls, and anything else inside a `token_mixer` (the attention
   matmuls, scale and bias add; the pool mixer's subtraction) -> token_mixer.
4. Everything else (residual adds, layer scales, a convolution whose kernel is unknown) -> other.

Fused nodes are attributed to the op that absorbed them: a BatchNorm folded into its convolution, a GELU or
ReLU fused into a convolution or a Linear, a residual add fused into a convolution count as that convolution
or Linear (projection, stem, token mixer...), so the normalization and activation shares are what the runtime
still runs as separate ops. Backends map fused nodes back to the absorbing module where they can (see each
backend's `profile`); what stays without a scope is counted by `Breakdown.unscoped_rows`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from torch import nn

if TYPE_CHECKING:
    from opbench.case import Case

K = TypeVar("K")

CATEGORIES: tuple[str, ...] = (
    "stem",
    "downsampling",
    "token_mixer",
    "normalization",
    "projection",
    "activation",
    "reshape",
    "head",
    "other",
)


@dataclass(frozen=True)
class OpRow:
    """One runtime operator of a profile: its mean time per inference and where it came from in the model.

    name: the runtime's op / node / kernel name; op_type: its kind as the runtime names it ("Conv",
    "aten::addmm", "Fully Connected (NC, F32) GEMM"); scope: the module path of the innermost module it
    came from ("stages.2.blocks.3.token_mixer"), "" when unknown; module_class: that module's class name
    ("Conv2d"), "" when unknown; time_s: mean seconds per inference over the profiled runs (the middle half of
    them, see `typical_mean`); kernel: the spatial kernel size of the
    convolution the row is attributed to (1 for a 1x1 convolution), 0 when it is no convolution or unknown.
    """

    name: str
    op_type: str
    scope: str = ""
    module_class: str = ""
    time_s: float = 0.0
    kernel: int = 0

    def to_json(self) -> dict:
        """Plain JSON (kept in result files). The category is derived with `categorize`, never stored."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> OpRow:
        return cls(
            name=str(data["name"]),
            op_type=str(data["op_type"]),
            scope=str(data.get("scope", "")),
            module_class=str(data.get("module_class", "")),
            time_s=float(data["time_s"]),
            kernel=int(data.get("kernel", 0)),
        )


def op_key(op_type: str) -> str:
    """An op type reduced to lowercase letters and digits: namespace ("aten::", "aten.") and parenthesized
    details ("(NC, F32) GEMM", XNNPACK) dropped, and the ".default" overload of an edge-dialect name."""
    name = op_type.split("(")[0]
    name = name.split("::")[-1]
    name = re.sub(r"\.(default|out|tensor|int|dim|scalar|self)$", "", name.strip(), flags=re.IGNORECASE)
    name = name.rsplit(".", 1)[-1]
    return re.sub(r"[^a-z0-9]", "", name.lower())


RESHAPE_OPS = frozenset(
    {
        "view", "viewcopy", "reshape", "unsafeview", "flatten", "unflatten", "transpose", "permute", "permutecopy",
        "contiguous", "clone", "copy", "tocopy", "todimordercopy", "expand", "expandcopy", "squeeze",
        "squeezecopy", "unsqueeze", "unsqueezecopy", "t", "split", "splitwithsizes", "splitwithsizescopy", "chunk",
        "unbind", "select", "selectcopy", "slice", "slicecopy", "narrow", "cat", "concat", "concatenation",
        "concatenate", "stack", "asstrided", "identity", "reorder", "reorderinput", "reorderoutput",
        "statictranspose", "staticreshape", "staticslice", "evensplit", "variadicsplit", "stridedslice", "memcpy",
        "memcpyfromhost", "memcpytohost", "pixelshuffle", "depthtospace", "spacetodepth", "convert",
        "raster",  # MNN's one data-movement op: reshapes, transposes, slices, concats and layout copies
    }
)  # fmt: skip
ACTIVATION_OPS = frozenset(
    {
        "relu", "relu6", "gelu", "biasgelu", "fastgelu", "quickgelu", "hardswish", "hswish", "hardsigmoid",
        "silu", "swish", "sigmoid", "tanh", "elu", "leakyrelu", "prelu", "mish", "hardtanh", "clip", "clamp",
        "softplus", "erf",
    }
)  # fmt: skip
NORM_OPS = frozenset(
    {
        "batchnorm", "nativebatchnorm", "nativebatchnormlegitnotraining", "nativebatchnormlegit",
        "batchnormalization", "batchnorminference", "layernorm", "nativelayernorm", "layernormalization",
        "skiplayernormalization", "simplifiedlayernormalization", "groupnorm", "nativegroupnorm",
        "groupnormalization", "instancenorm", "instancenormalization", "mvn", "rmsnorm", "normalizel2",
    }
)  # fmt: skip
PROJECTION_OPS = frozenset({"linear", "addmm", "gemm", "fusedgemm", "fullyconnected", "fc", "qlinear"})
CONV_OPS = frozenset(
    {
        "conv", "conv2d", "convolution", "convolutionoverrideable", "mkldnnconvolution", "slowconv2dforward",
        "thnnconv2d", "fusedconv", "groupconvolution", "convolutionpointwise", "depthwiseconvolution",
    }
)  # fmt: skip
POOL_OPS = frozenset(
    {
        "avgpool2d", "averagepool", "avgpool", "maxpool2d", "maxpool", "pooling", "averagepooling", "maxpooling",
        "adaptiveavgpool2d", "globalaveragepool", "globalaveragepooling",
    }
)  # fmt: skip
ATTENTION_OPS = frozenset(
    {"softmax", "bmm", "batchmatrixmultiply", "scaleddotproductattention", "fusedmatmul", "attention"}
)
ACTIVATION_CLASSES = frozenset(
    {"relu", "relu6", "gelu", "hardswish", "hardsigmoid", "silu", "sigmoid", "tanh", "elu", "leakyrelu", "mish"}
)
MATMUL_OPS = frozenset({"matmul", "mm", "bmm", "batchmatrixmultiply", "fusedmatmul"})


def _is_conv(op: str) -> bool:
    return op in CONV_OPS or op.startswith("conv")


def _absorbs(op: str) -> bool:
    """Ops that fusion lets absorb a norm or an activation (so a norm/activation scope does not decide)."""
    return _is_conv(op) or op in PROJECTION_OPS or op in MATMUL_OPS


def categorize(row: OpRow) -> str:
    """The category of one profiled operator, by the rule set in this module's docstring."""
    op = op_key(row.op_type)
    cls = row.module_class.rsplit(".", 1)[-1].lower()
    # 1. op-type overrides
    if op in RESHAPE_OPS:
        return "reshape"
    if op in ACTIVATION_OPS:
        return "activation"
    if op in NORM_OPS:
        return "normalization"
    # 2. path components
    parts = row.scope.split(".") if row.scope else []
    for part, category in (("stem", "stem"), ("downsample", "downsampling"), ("head", "head")):
        if part in parts:
            return category
    # 3. the innermost module class, then the op type
    if "norm" in cls and not _absorbs(op):
        return "normalization"
    if cls in ACTIVATION_CLASSES and not _absorbs(op):
        return "activation"
    conv = cls.startswith("conv") or _is_conv(op)
    if cls == "linear" or cls.endswith("linear") or op in PROJECTION_OPS:
        return "projection"
    if conv and row.kernel == 1:
        return "projection"
    if conv and row.kernel > 1:
        return "token_mixer"
    if "pool" in cls or "attention" in cls or "mixer" in cls or op in POOL_OPS or op in ATTENTION_OPS:
        return "token_mixer"
    if "token_mixer" in parts:
        return "token_mixer"
    return "other"


@dataclass
class Breakdown:
    """A profile summed by category and compared with the end-to-end median measured without the profiler.

    seconds: per category (every one of CATEGORIES, in order), mean seconds per inference; profiled_s: their
    sum; e2e_median_s: the end-to-end median it is compared with; top: the slowest operators, slowest first;
    unscoped_rows / unscoped_s: rows whose module path the backend could not recover (categorized by op type).
    """

    seconds: dict[str, float]
    profiled_s: float
    e2e_median_s: float
    top: list[OpRow] = field(default_factory=list)
    rows: int = 0
    unscoped_rows: int = 0
    unscoped_s: float = 0.0

    @property
    def coverage(self) -> float:
        """Profiled time / end-to-end median: how much of the latency the operator rows account for."""
        return self.profiled_s / self.e2e_median_s if self.e2e_median_s > 0 else float("nan")

    @property
    def shares(self) -> dict[str, float]:
        """Each category's fraction of the profiled time."""
        total = self.profiled_s
        return {c: (s / total if total > 0 else 0.0) for c, s in self.seconds.items()}

    def table(self) -> str:
        """A small text table: category, ms, share; then coverage."""
        lines = [f"{'category':<14}{'ms':>9}{'share':>8}"]
        for category, seconds in self.seconds.items():
            lines.append(f"{category:<14}{seconds * 1e3:>9.3f}{self.shares[category]:>8.1%}")
        lines.append(
            f"profiled {self.profiled_s * 1e3:.3f} ms / end-to-end median {self.e2e_median_s * 1e3:.3f} ms "
            f"= coverage {self.coverage:.2f}; {self.unscoped_rows}/{self.rows} rows without a module path"
        )
        return "\n".join(lines)


def breakdown(rows: Iterable[OpRow], e2e_median_s: float, top: int = 10) -> Breakdown:
    """Sum the rows by category; coverage against the end-to-end median; the `top` slowest rows."""
    rows = list(rows)
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    for row in rows:
        seconds[categorize(row)] += row.time_s
    unscoped = [r for r in rows if not r.scope]
    return Breakdown(
        seconds=seconds,
        profiled_s=sum(seconds.values()),
        e2e_median_s=e2e_median_s,
        top=sorted(rows, key=lambda r: r.time_s, reverse=True)[:top],
        rows=len(rows),
        unscoped_rows=len(unscoped),
        unscoped_s=sum(r.time_s for r in unscoped),
    )


def merge_rows(profiles: Sequence[Sequence[OpRow]]) -> list[OpRow]:
    """Rows of several profiles of one case on one backend averaged by name (first-seen order); a row absent
    from a profile counts 0 there."""
    first: dict[str, OpRow] = {}
    total: dict[str, float] = {}
    for rows in profiles:
        for row in rows:
            first.setdefault(row.name, row)
            total[row.name] = total.get(row.name, 0.0) + row.time_s
    count = max(len(profiles), 1)
    return [replace(row, time_s=total[name] / count) for name, row in first.items()]


def typical_mean(per_run: Sequence[Mapping[K, float]]) -> dict[K, float]:
    """Mean seconds per key over the middle half of the runs, ranked by each run's total (an interquartile mean).

    A run the machine interrupted (another process, a page fault) would otherwise inflate every operator it hit;
    the end-to-end latency it is compared with is a median for the same reason. Keys in first-seen order.
    """
    if not per_run:
        return {}
    ranked = sorted(per_run, key=lambda run: sum(run.values()))
    n = len(ranked)
    keep = ranked[n // 4 : n - n // 4] or ranked
    keys: dict[K, None] = {}
    for run in per_run:
        keys.update(dict.fromkeys(run))
    return {key: sum(run.get(key, 0.0) for run in keep) / len(keep) for key in keys}


# -- module paths: shared by the backends that map runtime nodes back to the torch module ------------------------


class ModuleIndex:
    """The modules of a torch model by path, to name a runtime node's module class and kernel, and to find the
    convolution or Linear that absorbed fused nodes by its weight's shape."""

    def __init__(self, model: nn.Module):
        self.modules: dict[str, nn.Module] = dict(model.named_modules())

    def __contains__(self, path: str) -> bool:
        return path in self.modules

    def innermost(self, path: str) -> str:
        """The longest prefix of `path` (by dotted components) that is a module path ("" for the root)."""
        parts = path.split(".") if path else []
        while parts and ".".join(parts) not in self.modules:
            parts.pop()
        return ".".join(parts)

    def class_of(self, path: str) -> str:
        module = self.modules.get(path)
        return type(module).__name__ if module is not None and path else ""

    def kernel_of(self, path: str) -> int:
        """The largest spatial kernel size of the convolution at `path`; 0 when it is no convolution."""
        module = self.modules.get(path)
        if isinstance(module, nn.modules.conv._ConvNd):
            return int(max(module.kernel_size))
        return 0

    def row(self, name: str, op_type: str, path: str, time_s: float) -> OpRow:
        """An OpRow for a node attributed to the module at `path` (or its innermost existing ancestor)."""
        path = self.innermost(path) if path else ""
        return OpRow(name, op_type, path, self.class_of(path), time_s, self.kernel_of(path))

    def find_weight(self, shape: Sequence[int], within: str = "", kind: str = "any") -> str | None:
        """The one convolution or Linear (kind "conv", "linear" or "any") under `within` (walking up to the
        root until one matches) whose weight has `shape`'s dimensions (ignoring 1s and order: runtimes add
        group and batch dimensions); None when none or several match at the first level with a match."""
        target = _dims(shape)
        level = within
        while True:
            prefix = f"{level}." if level else ""
            found = [
                path
                for path, module in self.modules.items()
                if (path == level or path.startswith(prefix)) and _matches(module, kind)
                and _dims(module.weight.shape) == target
            ]  # fmt: skip
            if found:
                return found[0] if len(found) == 1 else None
            if not level:
                return None
            level = level.rpartition(".")[0]


@functools.lru_cache(maxsize=1)
def module_index(case: Case) -> ModuleIndex:
    """The case's module indexed, built once for the backends `opbench profile` runs it on in turn (a model takes up to
    a second)."""
    return ModuleIndex(case.build())


def _dims(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(d) for d in shape if int(d) != 1)


def _matches(module: nn.Module, kind: str) -> bool:
    is_conv = isinstance(module, nn.modules.conv._ConvNd)
    is_linear = isinstance(module, nn.Linear)
    return {"conv": is_conv, "linear": is_linear}.get(kind, is_conv or is_linear)


def common_path(paths: Iterable[str]) -> str:
    """The deepest module path that contains every path ("" when they share nothing)."""
    split = [p.split(".") if p else [] for p in paths]
    if not split:
        return ""
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common)
