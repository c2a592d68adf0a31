"""executorch-xnnpack: ExecuTorch with the XNNPACK delegate, the runtime PyTorch models use on phones.

The case is exported (`torch.export`), lowered with `to_edge_transform_and_lower(..., [XnnpackPartitioner()])`
and serialized to a `.pte` program, cached on disk beside a record of the delegation: how many graph
nodes XNNPACK took and which operators stayed on ExecuTorch's portable kernels. Both go into the result
(`info`), since a case whose operators are not delegated measures the portable kernels, not XNNPACK.

A case whose graph XNNPACK would compute as a different function is unsupported, with the reason: ExecuTorch
1.5.1's XNNPACK delegate takes gelu(approximate='tanh') but computes exact (erf) GELU (the check against
eager caught it inside the MLP; alone, the difference, 4.7e-4 at most, hid within the f32 tolerance).

The program runs through ExecuTorch's Python runtime (`executorch.runtime`, the C++ runtime behind
pybindings); XNNPACK's threadpool is set to the run's thread count before the method is loaded.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from opbench.backends.base import Backend, Prepared, RunConfig, package_version
from opbench.case import Case
from opbench.errors import UnsupportedCase

PROGRAM = "model.pte"
DELEGATION = "delegation.json"


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
            f"{type(exc).__name__}: {exc}"
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


def export_program(case: Case, folder: Path) -> None:
    """torch.export -> Edge dialect lowered to XNNPACK -> ExecuTorch program; writes the .pte and the delegation."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with torch.no_grad():
        exported = torch.export.export(case.build(), (case.example_input(),))
    tanh_gelu = _tanh_gelus(exported.graph)
    edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
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
            "partitioner": "XnnpackPartitioner()",
            "runtime": "executorch.runtime (pybindings)",
        }

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        from executorch.runtime import Runtime

        artifact = config.cache.get_or_create(
            case, "executorch", self.versions(), ".et", lambda p: export_program(case, p)
        )
        record = json.loads((artifact.path / DELEGATION).read_text())
        threads = _set_threads(config.threads)
        program = Runtime.get().load_program(artifact.path / PROGRAM)  # a damaged program fails here: a failure
        try:
            method = program.load_method("forward")
        except Exception as exc:  # the runtime rejects the method (an operator without a kernel...)
            raise UnsupportedCase(f"load_method: {type(exc).__name__}: {exc}") from exc
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
