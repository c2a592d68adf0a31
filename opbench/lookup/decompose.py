"""A model cut into the blocks it is made of, at the shapes it runs them at: the entries of the block lookup table.

Decomposition, derived from the module, never written per model: run the model once with hooks on every module and
expand a *container* into its children when its call is exactly a chain of its children's calls (the first child
gets the container's input, each next child the previous child's output, the container returns the last child's
output, and the container holds no parameters of its own). Containers are the model itself, every nn.Sequential and
every stage (a module with a `blocks` child); the naming contract's `stem`, `downsample` and `head` stay whole. Any
module that is not expanded is a block (nn.Identity, which computes nothing, is left out). Because every expanded
module is a chain without parameters of its own, the blocks compute the model and hold all its parameters, which
tests/test_lookup.py checks for every zoo model (parameters and MACs sum to the model's).

Identical blocks (same structure, same parameter shapes, same input shape) are one table entry, measured once.
The decomposition takes about ten seconds (a forward of every model on the meta device), so it is kept in the
artifact cache under a hash of opbench's own source files: any change to a model or to this module derives it again.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from opbench.case import BYTES_PER_ELEMENT, Case, make_case
from opbench.files import atomic_write_text

WHOLE = ("stem", "downsample", "head")  # contract names that stay one block whatever their type


@dataclass(frozen=True)
class BlockUse:
    """One block of a model: where it sits (module path) and the table entry (case) that times it."""

    path: str
    case: Case


@dataclass
class _Call:
    module: nn.Module
    args: tuple
    start: int
    end: int = -1
    output: object = None


@dataclass(frozen=True)
class Block:
    """One block found in a model: where, what kind (its type, or its contract name), its identity and shapes."""

    path: str
    kind: str
    signature: str  # structure, parameter shapes and input shape: equal signatures are one table entry
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight_bytes: int  # its parameters at the protocol's precision: what a cold call reads from memory

    @classmethod
    def from_json(cls, data: dict) -> Block:
        return cls(**{**data, "input_shape": tuple(data["input_shape"]), "output_shape": tuple(data["output_shape"])})


def _calls(model: nn.Module, x: torch.Tensor) -> list[_Call]:
    """Every module call of one forward, in the order they start, each with its arguments and output."""
    calls: list[_Call] = []
    stack: list[_Call] = []

    def pre(module: nn.Module, args: tuple) -> None:
        calls.append(_Call(module, args, len(calls)))
        stack.append(calls[-1])

    def post(module: nn.Module, args: tuple, output: object) -> None:
        call = stack.pop()
        call.output, call.end = output, len(calls)

    handles = [h for m in model.modules() for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def _is_chain(call: _Call, children: list[_Call]) -> bool:
    if any(True for _ in call.module.parameters(recurse=False)) or any(True for _ in call.module.buffers(False)):
        return False
    value = call.args[0] if len(call.args) == 1 else None
    for child in children:
        if value is None or len(child.args) != 1 or child.args[0] is not value:
            return False
        value = child.output
    return bool(children) and value is call.output


def find_blocks(model: nn.Module, input_shape: tuple[int, ...]) -> list[Block]:
    """The model's blocks in call order, with their input and output shapes (see the module docstring)."""
    names = {m: path for path, m in model.named_modules()}
    parents = {child: m for m in model.modules() for child in m.children()}
    device = next(model.parameters()).device
    calls = _calls(model, torch.zeros(input_shape, device=device))
    found: list[Block] = []

    def visit(call: _Call) -> None:
        path = names[call.module]
        children = [c for c in calls[call.start + 1 : call.end] if parents.get(c.module) is call.module]
        container = call.module is model or isinstance(call.module, nn.Sequential) or hasattr(call.module, "blocks")
        if container and path.rsplit(".", 1)[-1] not in WHOLE and _is_chain(call, children):
            for child in children:
                visit(child)
        elif not isinstance(call.module, nn.Identity):
            last = path.rsplit(".", 1)[-1]
            kind = last if last in WHOLE else type(call.module).__name__.lower()
            shapes = tuple(call.args[0].shape), tuple(call.output.shape)
            weights = sum(p.numel() for p in call.module.parameters()) * BYTES_PER_ELEMENT
            found.append(Block(path, kind, _signature(call.module, shapes[0]), *shapes, weights))

    visit(calls[0])
    return found


def _signature(module: nn.Module, input_shape: tuple[int, ...]) -> str:
    tensors = [(n, tuple(t.shape)) for n, t in [*module.named_parameters(), *module.named_buffers()]]
    return f"{module!r}|{tensors}|{input_shape}"


def _shape_params(shape: tuple[int, ...], prefix: str = "") -> dict[str, int]:
    if len(shape) == 4:
        dims = {"c": shape[1], "h": shape[2]} | ({"w": shape[3]} if shape[3] != shape[2] else {})
    elif len(shape) == 3:
        dims = {"n": shape[1], "c": shape[2]}
    else:
        dims = {"c": shape[-1]}
    return {prefix + k: v for k, v in dims.items()}


@functools.lru_cache(maxsize=2)
def _built(factory: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return factory().eval()


def _submodule(factory: Callable[[], nn.Module], path: str) -> nn.Module:
    """One block of a model, as its own module (a copy; Case.build randomizes it in place)."""
    return copy.deepcopy(_built(factory).get_submodule(path))


@dataclass(frozen=True)
class Source:
    """A model the table is derived from: a zoo model, or a probe of the slimming search space."""

    name: str
    family: str
    factory: Callable[[], nn.Module] = field(compare=False)
    input_shape: tuple[int, ...] = (1, 3, 224, 224)


@dataclass
class Table:
    """Every block of every source deduplicated into cases, and each source's block sequence."""

    cases: list[Case] = field(default_factory=list)
    uses: dict[str, list[BlockUse]] = field(default_factory=dict)
    weight_bytes: dict[str, int] = field(default_factory=dict)  # case id -> its block's weights


def decompose(source: Source) -> list[Block]:
    with torch.device("meta"):
        model = source.factory().eval()
    return find_blocks(model, source.input_shape)


def build_table(sources: Iterable[Source], suite: str, remembered: Path | None = None) -> Table:
    """The table of the sources' blocks as cases of `suite`; `remembered`: a JSON file of earlier decompositions to
    read and extend."""
    sources = list(sources)
    known: dict[str, list[Block]] = {}
    if remembered is not None:
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            data = json.loads(remembered.read_text(encoding="utf-8"))
            known = {name: [Block.from_json(b) for b in blocks] for name, blocks in data.items()}
    found = {s.name: known.get(s.name) or decompose(s) for s in sources}
    if remembered is not None and any(name not in known for name in found):
        with contextlib.suppress(OSError):  # a read-only cache only costs the next process the decomposition
            remembered.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(remembered, json.dumps({n: [asdict(b) for b in bs] for n, bs in found.items()}))
    first: dict[str, tuple[Source, Block]] = {}  # signature -> where it was first seen
    for source in sources:
        for b in found[source.name]:
            first.setdefault(b.signature, (source, b))
    base_ids: dict[str, set[str]] = {}
    made: dict[str, Case] = {}
    for sig, (source, b) in first.items():
        made[sig] = _case(suite, source, b, suffix="")
        base_ids.setdefault(made[sig].id, set()).add(sig)
    for sig, (source, b) in first.items():
        if len(base_ids[made[sig].id]) > 1:  # same kind and shapes, different structure: name it by its hash
            made[sig] = _case(suite, source, b, suffix="_" + hashlib.sha1(sig.encode()).hexdigest()[:6])
    uses = {s.name: [BlockUse(b.path, made[b.signature]) for b in found[s.name]] for s in sources}
    weights = {made[sig].id: b.weight_bytes for sig, (_, b) in first.items()}
    return Table(list(made.values()), uses, weights)


def _case(suite: str, source: Source, block: Block, suffix: str) -> Case:
    params = _shape_params(block.input_shape)
    if block.output_shape != block.input_shape:
        params |= _shape_params(block.output_shape, "o")
    factory = functools.partial(_submodule, source.factory, block.path)
    return make_case(
        suite, source.family, block.kind + suffix, factory, block.input_shape, suite, f"{block.path} of {source.name}",
        **params,
    )  # fmt: skip


def source_hash() -> str:
    """sha256 of opbench's Python sources and torch's version: what the decomposition depends on."""
    digest = hashlib.sha256(torch.__version__.encode())
    package = Path(__file__).parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
