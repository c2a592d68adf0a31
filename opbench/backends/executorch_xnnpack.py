"""executorch-xnnpack: ExecuTorch with the XNNPACK delegate, the runtime PyTorch models use on phones.

The case is exported (`torch.export`), lowered with `to_edge_transform_and_lower(..., [XnnpackPartitioner(...)])`
and serialized to a `.pte` program, cached on disk beside a record of the delegation: how many graph
nodes XNNPACK took and which operators stayed on ExecuTorch's portable kernels. Both go into the result
(`info`), since a case whose operators are not delegated measures the portable kernels, not XNNPACK.

A case whose graph XNNPACK would compute as a different function is unsupported, with the reason: ExecuTorch
1.5.1's XNNPACK delegate takes gelu(approximate='tanh') but computes exact (erf) GELU (the check against
eager caught it inside the MLP; alone, the difference, 4.7e-4 at most, hid within the f32 tolerance).

One pattern is kept out of the delegate instead: a softmax over the last axis of a 4D tensor that XNNPACK lays out
channels-last. Its ChannelsLastTaggedReshapePass treats softmax as layout-free, so after a convolution (the
talking-head attention of EfficientFormerV2: 1x1 conv, softmax, 1x1 conv) it normalizes over the channels: max abs
error 0.18 on outputs of at most 0.34 for conv1x1-softmax-conv1x1 on 1x8x49x49, every EfficientFormerV2 failing its
check. That softmax runs on ExecuTorch's portable kernel, correct; the delegation record lists it as not delegated.

The program runs through ExecuTorch's Python runtime (`executorch.runtime`, the C++ runtime behind
pybindings); XNNPACK's threadpool is set to the run's thread count before the method is loaded.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from opbench.backends.base import Backend, Prepared, RunConfig, package_version
from opbench.case import Case
from opbench.errors import ProfilerUnavailable, UnsupportedCase, error_text

if TYPE_CHECKING:
    from opbench.attribution import ModuleIndex, OpRow
    from opbench.cache import Artifact

PROGRAM = "model.pte"
DELEGATION = "delegation.json"
ETRECORD = "etrecord.bin"  # written beside the program of the profiling pass (export_program(etrecord=True))
PROFILE_WARMUP = 3


@functools.cache
def _import_error() -> str | None:
    """Why ExecuTorch's exporter or runtime cannot be imported next to this torch, or None (imported once)."""
    if importlib.util.find_spec("executorch") is None:
        return "not installed: executorch (pip install 'opbench[executorch]')"
    try:
        import executorch.exir  # noqa: F401
        import executorch.runtime  # noqa: F401
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner  # noqa: F401
    except Exception as exc:  # an ExecuTorch built for another torch fails here (missing symbols, API changes)
        return (
            f"executorch {package_version('executorch')} does not load with torch {torch.__version__}: "
            f"{error_text(exc)}"
        )
    return None


def _op(breakdown) -> str:
    return breakdown.op_type


def delegation(graph_module: torch.fx.GraphModule) -> dict:
    """Delegated and non-delegated operator nodes of a lowered graph, and the operators of each."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    # getitem nodes only unpack a delegate's outputs: plumbing, not an operator left undelegated
    by_op = [b for b in info.delegation_by_operator.values() if b.op_type != "getitem"]
    return {
        "delegated_subgraphs": info.num_delegated_subgraphs,
        "delegated_nodes": sum(b.delegated for b in by_op),
        "non_delegated_nodes": sum(b.non_delegated for b in by_op),
        "delegated_ops": {b.op_type: b.delegated for b in sorted(by_op, key=_op) if b.delegated},
        "non_delegated_ops": {b.op_type: b.non_delegated for b in sorted(by_op, key=_op) if b.non_delegated},
    }


def export_program(case: Case, folder: Path, etrecord: bool = False) -> None:
    """torch.export -> Edge dialect lowered to XNNPACK -> ExecuTorch program; writes the .pte and the delegation
    (and, with `etrecord`, the ETRecord that ExecuTorch's Inspector needs to read a profile of this program)."""
    from executorch.exir import to_edge_transform_and_lower

    with torch.no_grad():
        exported = torch.export.export(case.build(), (case.example_input(),))
    tanh_gelu = _tanh_gelus(exported.graph)
    edge = to_edge_transform_and_lower(exported, partitioner=[_partitioner()], generate_etrecord=etrecord)
    record = delegation(edge.exported_program().graph_module)
    if tanh_gelu and record["delegated_ops"].get("aten_gelu_default"):
        raise UnsupportedCase(
            f"XNNPACK delegate computes gelu(approximate='tanh') as exact (erf) GELU: executorch "
            f"{package_version('executorch')}'s GeluConfig delegates it and its XNNGelu node drops `approximate`; "
            f"timing it would time a different function ({tanh_gelu} tanh GELU node(s) in the graph)"
        )
    program = edge.to_executorch()
    folder.mkdir(parents=True)
    (folder / PROGRAM).write_bytes(program.buffer)
    (folder / DELEGATION).write_text(json.dumps(record, indent=1))
    if etrecord:
        program.get_etrecord().save(str(folder / ETRECORD))


def _partitioner():
    """XNNPACK's partitioner with every default config, its softmax config refusing a channels-last input."""
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.generic_node_configs import SoftmaxConfig
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    class LastAxisSoftmax(SoftmaxConfig):
        def check_constraints(self, node: torch.fx.Node, ep) -> bool:
            return super().check_constraints(node, ep) and not _channels_last_input(node)

    return XnnpackPartitioner(configs=[LastAxisSoftmax if c is SoftmaxConfig else c for c in ALL_PARTITIONER_CONFIGS])


def _channels_last_input(node: torch.fx.Node) -> bool:
    """Whether XNNPACK would hand this node a channels-last input: a 4D input that reaches an op XNNPACK runs
    channels-last (convolution, pooling, mean...) through ops it treats as layout-free, before any op that needs
    channels-first (a view, a linear) or an input of the graph."""
    from executorch.backends.xnnpack._passes.channels_last_tagged_reshape_pass import ChannelsLastTaggedReshapePass
    from executorch.exir.dialects._ops import ops as exir_ops

    layout = ChannelsLastTaggedReshapePass
    first = layout.memory_sensitive_ops_nchw | {exir_ops.edge.aten.view_copy.default}
    source = node.all_input_nodes[0]
    if len(source.meta["val"].shape) != 4:
        return False
    stack, seen = [source], set()
    while stack:
        if (current := stack.pop()) in seen or current.op != "call_function" or current.target in first:
            continue
        if current.target in layout.memory_sensitive_ops_nhwc:
            return True
        seen.add(current)
        stack.extend(current.all_input_nodes)
    return False


def _tanh_gelus(graph: torch.fx.Graph) -> int:
    """The gelu(approximate='tanh') nodes of an exported graph."""
    return sum(
        1
        for node in graph.nodes
        if node.target == torch.ops.aten.gelu.default and node.kwargs.get("approximate", "none") == "tanh"
    )


def _set_threads(threads: int) -> int:
    """Size ExecuTorch's threadpool (used by XNNPACK) to `threads`; returns the size it has."""
    from executorch.extension.pybindings import portable_lib

    if portable_lib._threadpool_get_thread_count() != threads:
        portable_lib._unsafe_reset_threadpool(threads)
    return int(portable_lib._threadpool_get_thread_count())


class ExecuTorchXnnpack(Backend):
    name = "executorch-xnnpack"

    def unavailable_reason(self) -> str | None:
        return _import_error()

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__, "executorch": package_version("executorch")}

    def options(self) -> dict:
        return {
            "lowering": "to_edge_transform_and_lower",
            "partitioner": "XnnpackPartitioner() but softmax over a channels-last input (left to portable kernels)",
            "runtime": "executorch.runtime (pybindings)",
        }

    def export(self, case: Case, config: RunConfig) -> Artifact:
        """The lowered program, cached; a case that will be profiled is lowered once, with the ETRecord its profile
        needs (hundreds of MB for a large model, so not for every case)."""
        kind = "executorch-profile" if config.profiled else "executorch"
        key = {**self.versions(), **self.options()}
        return config.cache.get_or_create(
            case, kind, key, ".et", lambda p: export_program(case, p, etrecord=config.profiled)
        )

    def profile(self, case: Case, config: RunConfig, runs: int) -> list[OpRow]:
        """ExecuTorch's ETDump on the program lowered with an ETRecord, loaded anew (not the instance timed) with
        `enable_etdump=True`, a warm-up and `runs` executions, `write_etdump_result_to_file`, then
        `executorch.devtools.Inspector(...).to_dataframe()`, one row per event and a time per execution.

        Rows: each XNNPACK operator (`Fully Connected (NC, F32) GEMM #1`, `Convolution (NHWC, F32) IGEMM #2`...);
        each operator left to ExecuTorch's portable kernels (`native_call_*`, with its module path from the
        ETRecord); and per delegate call, the time it spent outside its XNNPACK operators. XNNPACK's operator
        rows carry their kind but no module path; see `_align` for how they get one.
        """
        from executorch.devtools import Inspector
        from executorch.runtime import Runtime

        from opbench.attribution import module_index, typical_mean

        artifact = self.export(case, replace(config, profiled=True))
        _set_threads(config.threads)
        try:
            program = Runtime.get().load_program(artifact.path / PROGRAM, enable_etdump=True, debug_buffer_size=0)
            method = program.load_method("forward")
        except Exception as exc:  # a runtime built without the ETDump event tracer
            raise ProfilerUnavailable(f"executorch runtime cannot load with ETDump: {error_text(exc)}") from exc
        inputs = [case.example_input()]
        for _ in range(PROFILE_WARMUP + runs):
            method.execute(inputs)
        with tempfile.TemporaryDirectory(prefix="opbench-etdump-") as tmp:
            etdump, debug = Path(tmp) / "profile.etdp", Path(tmp) / "debug.bin"
            program.write_etdump_result_to_file(str(etdump), str(debug))
            frame = Inspector(etdump_path=str(etdump), etrecord=str(artifact.path / ETRECORD)).to_dataframe()
        index = module_index(case)
        events = [row for _, row in frame.iterrows() if row["event_block_name"] == "Execute"]
        named = _etdump_rows(events, index, runs)
        per_run = [{key: times[i] for key, (_, times) in named.items()} for i in range(runs)]
        means = typical_mean(per_run)
        return [replace(row, time_s=means[key]) for key, (row, _) in named.items()]

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        from executorch.runtime import Runtime

        artifact = self.export(case, config)
        record = json.loads((artifact.path / DELEGATION).read_text())
        threads = _set_threads(config.threads)
        program = Runtime.get().load_program(artifact.path / PROGRAM)  # a damaged program fails here: a failure
        try:
            method = program.load_method("forward")
        except Exception as exc:  # the runtime rejects the method (an operator without a kernel...)
            raise UnsupportedCase(f"load_method: {error_text(exc)}") from exc
        inputs = [case.example_input()]

        def run() -> object:
            return method.execute(inputs)

        def infer() -> np.ndarray:
            return run()[0].numpy().copy()

        return Prepared(
            run=run,
            infer=infer,
            export_s=artifact.export_s,
            cache_hit=artifact.cache_hit,
            info={**artifact.info, **record, "threadpool_threads": threads},
        )


# -- profiling: ETDump events to rows -----------------------------------------------------------------------------

# XNNPACK operator kinds (profile.op_key of the event name) -> the aten ops a partition node may carry for them
_XNN_KINDS = {
    "convolution": {"convolution"},
    "deconvolution": {"convolution"},
    "fullyconnected": {"linear", "addmm", "mm", "convolution"},  # XNNPACK runs 1x1 convolutions as GEMMs too
    "batchmatrixmultiply": {"bmm", "matmul"},
    "averagepooling": {"avg_pool2d", "mean", "adaptive_avg_pool2d"},
    "globalaveragepooling": {"avg_pool2d", "mean", "adaptive_avg_pool2d"},
    "maxpooling": {"max_pool2d", "max_pool2d_with_indices"},
    "multiply": {"mul"},
    "add": {"add"},
    "subtract": {"sub"},
    "divide": {"div"},
    "gelu": {"gelu"},
    "clamp": {"relu", "hardtanh", "clamp"},
    "hardswish": {"hardswish"},
    "sigmoid": {"sigmoid"},
    "tanh": {"tanh"},
    "softmax": {"_softmax", "softmax"},
}
_NODE_KIND = re.compile(r"^aten_(.+?)_(?:default|tensor|scalar|int|dim|self|out)(?:_\d+)?_$")


def _innermost(hierarchy: dict) -> str:
    """The innermost module path of one node's module hierarchy ({'L__self__stem': ('stem', 'Sequential'), ...})."""
    paths = [value[0] for value in hierarchy.values() if isinstance(value, tuple | list) and value]
    return max(paths, key=len) if paths else ""


def _align(ops: list[str], hierarchy: dict, index: ModuleIndex) -> list[str]:
    """Module paths for the XNNPACK operators of one delegate call, by aligning them with the partition's nodes.

    The delegate runs its operators in the order of the partition's graph nodes (the ETRecord lists them, with
    each node's module hierarchy, on the DELEGATE_CALL event), minus what it fused (BatchNorm folded into a
    convolution, ReLU into its clamp) and plus the layout transposes it inserts. Each compute operator takes
    the next unmatched node of a kind it can run (a Fully Connected an `aten.linear` or a 1x1
    `aten.convolution`, a Multiply an `aten.mul`...); an operator with no such node ahead, and data movement
    (transposes, reshapes, copies), take the path of the last matched node without consuming one, so a
    transpose XNNPACK inserted cannot shift the alignment. A heuristic: ops fused or reordered in other ways
    than these would be attributed to a neighbour.
    """
    from opbench.attribution import op_key

    nodes = []
    for name, modules in (hierarchy if isinstance(hierarchy, dict) else {}).items():
        match = _NODE_KIND.match(name)
        nodes.append((match.group(1) if match else name, _innermost(modules) if isinstance(modules, dict) else ""))
    cursor, last, paths = 0, "", []
    for op in ops:
        kinds = _XNN_KINDS.get(op_key(op))
        found = None
        if kinds:
            found = next((i for i in range(cursor, len(nodes)) if nodes[i][0] in kinds), None)
        if found is not None:
            cursor, last = found + 1, index.innermost(nodes[found][1])
        paths.append(last)
    return paths


def _etdump_rows(events: list, index: ModuleIndex, runs: int) -> dict[str, tuple[OpRow, list[float]]]:
    """Rows (time_s left 0) and their seconds per profiled run, by a unique key, from the Inspector's events."""
    from opbench.attribution import OpRow

    def seconds(event) -> list[float]:
        raw = list(event["raw"])[-runs:]  # milliseconds, one per execution; the warm-up ones come first
        return [float(ms) * 1e-3 for ms in raw] + [0.0] * (runs - len(raw))

    rows: dict[str, tuple[OpRow, list[float]]] = {}
    pending: list = []  # the XNNPACK operators of the delegate call whose DELEGATE_CALL event comes next
    calls = 0
    native: dict[str, int] = {}  # portable-kernel calls so far, by event name
    for event in events:
        name = str(event["event_name"])
        if bool(event["is_delegated_op"]):
            pending.append(event)
        elif name == "DELEGATE_CALL":
            calls += 1
            ops = [re.sub(r"\s*#\d+$", "", str(e["event_name"])) for e in pending]
            paths = _align(ops, event["module_hierarchy"], index)
            inside = [0.0] * runs
            for e, op, path in zip(pending, ops, paths, strict=True):
                times = seconds(e)
                inside = [a + b for a, b in zip(inside, times, strict=True)]
                row = OpRow(f"{e['event_name']} (delegate call {calls})", op, path, index.class_of(path), 0.0,
                            index.kernel_of(path))  # fmt: skip
                rows[row.name] = (row, times)
            overhead = [max(t - i, 0.0) for t, i in zip(seconds(event), inside, strict=True)]
            row = OpRow(f"delegate call {calls} outside its XNNPACK operators", "DELEGATE_CALL")
            rows[row.name] = (row, overhead)
            pending = []
        elif name.startswith("native_call_"):
            hierarchy = event["module_hierarchy"] if isinstance(event["module_hierarchy"], dict) else {}
            first = next(iter(hierarchy.values()), {})
            path = index.innermost(_innermost(first)) if isinstance(first, dict) else ""
            op = "aten::" + name.removeprefix("native_call_").removesuffix(".out")  # the portable kernel's op
            native[name] = native.get(name, 0) + 1
            row = index.row(f"{name} #{native[name]}", op, path, 0.0)
            rows[row.name] = (row, seconds(event))
    return rows
