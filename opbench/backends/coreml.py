"""coreml-all, coreml-cpu-gpu, coreml-cpu: Core ML ML programs (coremltools, via torch.export).

Everything but the prediction is portable: `package()` converts a case to an `.mlpackage` through the
artifact cache on any OS (this is what `opbench export --backend coreml` writes for an iPhone), and
`describe()` reads a package's spec back. Only `CoreML.prepare()` needs macOS: it loads the cached
package with a compute unit and hands opbench.measure.path a bound `model.predict`, so verification and timing
take the same path as every other backend.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import platform
import warnings
from pathlib import Path

import numpy as np
import torch

from opbench.backends.base import Backend, DeviceUnits, ExportFormat, Prepared, RunConfig, package_version
from opbench.cache import Artifact, ArtifactCache
from opbench.case import Case
from opbench.errors import OpbenchError, ProfilerUnavailable

# bump when convert() changes what it produces: cached packages of an older recipe are then converted again
RECIPE = 2  # 2: tanh GELU spelled out for coremltools 9.0 (see _spell_out_tanh_gelu)
DEFAULT_TARGET = "iOS15"  # the first target with ML programs; iPhone 12 runs it and every later iOS
PRECISIONS = ("float32", "float16")
# opbench's names (those of Core ML's MLComputeUnits and of Xcode's performance report) -> coremltools' enum
COMPUTE_UNITS = {"all": "ALL", "cpuAndGPU": "CPU_AND_GPU", "cpuOnly": "CPU_ONLY"}
BACKEND_UNITS = {"coreml-all": "all", "coreml-cpu-gpu": "cpuAndGPU", "coreml-cpu": "cpuOnly"}
# how an iPhone's or a Mac's measurements name the compute units: Xcode's and coremltools' spellings
DEVICE_UNITS = DeviceUnits(
    BACKEND_UNITS,
    {"all": "all", "cpuandgpu": "cpuAndGPU", "cpugpu": "cpuAndGPU", "cpuonly": "cpuOnly", "cpu": "cpuOnly"},
    "coreml-all",
)


def coreml_versions() -> dict[str, str]:
    return {"torch": torch.__version__, "coremltools": package_version("coremltools")}


def coreml_key(target: str = DEFAULT_TARGET, precision: str = "float32") -> dict:
    """What an exported package depends on besides the case: converter versions, format, target, precision."""
    return {
        **coreml_versions(),
        "recipe": RECIPE,
        "convert_to": "mlprogram",
        "deployment_target": target,
        "precision": precision,
    }


def import_coremltools():
    """coremltools, imported without its noise (torch-version and missing-native-library warnings on Linux)."""
    with contextlib.redirect_stderr(io.StringIO()), _quiet_logger("coremltools"):
        import coremltools

    return coremltools


# deployment targets of coremltools 9 that have ML programs (a newer name is checked against coremltools itself)
ML_PROGRAM_TARGETS = (
    *("iOS15", "iOS16", "iOS17", "iOS18", "iOS26", "macOS12", "macOS13", "macOS14", "macOS15", "macOS26"),
    *("watchOS8", "watchOS9", "watchOS10", "watchOS11", "watchOS26", "tvOS15", "tvOS16", "tvOS17", "tvOS18", "tvOS26"),
)
TOO_OLD_TARGETS = ("iOS13", "iOS14", "macOS10_15", "macOS10_16", "macOS11", "watchOS6", "watchOS7", "tvOS13", "tvOS14")


def check_options(target: str, precision: str) -> None:
    """OpbenchError for a precision or deployment target that cannot give an ML program; imports nothing usually."""
    if precision not in PRECISIONS:
        raise OpbenchError(f"Core ML precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if package_version("coremltools") == "missing":
        raise OpbenchError("coremltools is not installed: pip install 'opbench[coreml]'")
    if target in TOO_OLD_TARGETS:
        raise OpbenchError(f"deployment target {target} has no ML programs; choose iOS15 or later")
    if target not in ML_PROGRAM_TARGETS and target not in import_coremltools().target.__members__:
        raise OpbenchError(f"unknown Core ML deployment target {target!r}; e.g. {', '.join(ML_PROGRAM_TARGETS[:5])}")


def export_format(precision: str = "float32", target: str | None = None) -> ExportFormat:
    """Core ML ML programs for `opbench export`: one .mlpackage per case, measured on the device per compute unit."""
    target = target or DEFAULT_TARGET
    check_options(target, precision)
    return ExportFormat(
        "coreml",
        ".mlpackage",
        {"convert_to": "mlprogram", "deployment_target": target, "precision": precision, "recipe": RECIPE},
        coreml_versions(),
        lambda case, cache: package(case, cache, target, precision),
        describe,
        DEVICE_UNITS,
    )


def convert(case: Case, path: Path, target: str = DEFAULT_TARGET, precision: str = "float32") -> None:
    """torch.export the case at its example input, convert to an ML program, save as `path` (.mlpackage)."""
    ct = import_coremltools()
    # coremltools prints progress bars and warnings (torch version untested) on stderr: keep them off the CLI
    with contextlib.redirect_stderr(io.StringIO()), _quiet_logger("coremltools"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the converter's own deprecations; success or failure is what counts
        program = torch.export.export(case.build(), (case.example_input(),)).run_decompositions({})
        _spell_out_tanh_gelu(program)
        model = ct.convert(
            program,
            convert_to="mlprogram",
            minimum_deployment_target=getattr(ct.target, target),
            compute_precision=ct.precision.FLOAT16 if precision == "float16" else ct.precision.FLOAT32,
            skip_model_load=True,  # compiling needs macOS; the spec is all an export needs
        )
        model.save(str(path))


def _spell_out_tanh_gelu(program: torch.export.ExportedProgram) -> None:
    """Write each tanh-approximated GELU as its formula, which coremltools fuses back into gelu(TANH_APPROXIMATION).

    coremltools 9.0 reads only positional inputs of aten.gelu, and torch.export passes `approximate='tanh'` as a
    keyword, so a tanh GELU would silently become the exact one (apple/coremltools PR #2863). The formula is laid
    out as the converter's fuse_gelu_tanh_approximation pass expects it: x * (0.5 * (tanh((0.044715 x^3 + x)
    * sqrt(2/pi)) + 1)); a test checks that the package holds one fused tanh GELU.
    """
    aten = torch.ops.aten
    graph = program.graph_module.graph
    for node in list(graph.nodes):
        if node.target is not aten.gelu.default or node.kwargs.get("approximate", "none") != "tanh":
            continue
        (x,) = node.args
        with graph.inserting_before(node):
            cube = graph.call_function(aten.pow.Tensor_Scalar, (x, 3.0))
            inner = graph.call_function(aten.add.Tensor, (graph.call_function(aten.mul.Tensor, (cube, 0.044715)), x))
            scaled = graph.call_function(aten.mul.Tensor, (inner, math.sqrt(2 / math.pi)))
            one_plus = graph.call_function(aten.add.Tensor, (graph.call_function(aten.tanh.default, (scaled,)), 1.0))
            half = graph.call_function(aten.mul.Tensor, (one_plus, 0.5))
        # the GELU node itself becomes the last multiplication: its name and metadata stay what the graph's
        # signature refers to when it is the program's output
        node.target, node.args, node.kwargs = aten.mul.Tensor, (x, half), {}
    program.graph_module.recompile()


def package(case: Case, cache: ArtifactCache, target: str = DEFAULT_TARGET, precision: str = "float32") -> Artifact:
    """The case's cached .mlpackage (converted on first use); UnsupportedCase with the converter's message."""
    if package_version("coremltools") == "missing":  # must not be cached as an unsupported case
        raise OpbenchError("coremltools is not installed: pip install 'opbench[coreml]'")
    return cache.get_or_create(
        case, "coreml", coreml_key(target, precision), ".mlpackage", lambda p: convert(case, p, target, precision)
    )


def describe(path: Path) -> dict:
    """The package's single input and output as its spec records them: {input: {name, shape, dtype}, output}."""
    spec = import_coremltools().utils.load_spec(str(path))
    (inp,), (out,) = spec.description.input, spec.description.output
    return {"input": _feature(inp), "output": _feature(out)}


def _feature(feature) -> dict:
    array = feature.type.multiArrayType
    dtype = array.DESCRIPTOR.fields_by_name["dataType"].enum_type.values_by_number[array.dataType].name
    return {"name": feature.name, "shape": [int(d) for d in array.shape], "dtype": dtype.lower()}


@contextlib.contextmanager
def _quiet_logger(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class CoreML(Backend):
    """Core ML predictions through coremltools on macOS, with one compute-unit setting per backend name."""

    def __init__(self, name: str, target: str = DEFAULT_TARGET, precision: str = "float32"):
        self.name = name
        self.compute_unit = BACKEND_UNITS[name]
        self.target = target
        self.precision = precision

    def unavailable_reason(self) -> str | None:
        if platform.system() != "Darwin":
            return (
                f"Core ML runs predictions only on macOS (this is {platform.system()}); "
                "`opbench export --backend coreml` still writes the packages for a Mac or an iPhone"
            )
        if package_version("coremltools") == "missing":
            return "coremltools is not installed (pip install 'opbench[coreml]')"
        import_coremltools()
        from coremltools.models import model as ct_model

        if getattr(ct_model, "_MLModelProxy", None) is None:
            return "coremltools has no native Core ML library on this Mac (install a coremltools wheel for macOS)"
        return None

    def versions(self) -> dict[str, str]:
        return coreml_versions()

    def options(self) -> dict:
        return {"compute_units": self.compute_unit, "deployment_target": self.target, "precision": self.precision}

    def profile(self, case: Case, config: RunConfig, runs: int):
        """Unavailable: coremltools times whole predictions; per-layer times need Xcode's performance report."""
        raise ProfilerUnavailable(
            f"{self.name}: coremltools exposes no per-layer timings (MLModel.predict times the whole model); "
            "per-operator times of a Core ML package come from Xcode's Core ML performance report on the device"
        )

    def prepare(self, case: Case, config: RunConfig) -> Prepared:  # pragma: no cover - needs macOS
        ct = import_coremltools()
        artifact = package(case, config.cache, self.target, self.precision)
        io_names = describe(artifact.path)
        units = getattr(ct.ComputeUnit, COMPUTE_UNITS[self.compute_unit])
        model = ct.models.MLModel(str(artifact.path), compute_units=units)
        feed = {io_names["input"]["name"]: case.example_input().numpy()}
        output = io_names["output"]["name"]

        def run() -> object:
            return model.predict(feed)

        def infer() -> np.ndarray:
            return np.asarray(run()[output], dtype=np.float32)

        return Prepared(
            run=run, infer=infer, export_s=artifact.export_s, cache_hit=artifact.cache_hit, info=artifact.info
        )
