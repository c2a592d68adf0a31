"""The block decomposition covers every zoo model; predict and slim on constructed tables with known answers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from opbench import lookup
from opbench.models import ZOO
from opbench.models.suite import model_case


@pytest.mark.parametrize("name", list(ZOO))
def test_blocks_cover_every_module_of_the_model(name):
    """No time silently dropped: the blocks hold every parameter of the model and their MACs sum to the model's."""
    uses = lookup.model_blocks(name)
    with torch.device("meta"):
        model = ZOO[name].factory()
    covered = [p for u in uses for p in model.get_submodule(u.path).parameters()]
    assert len({id(p) for p in covered}) == len(covered), "a parameter is in two blocks"
    assert sum(p.numel() for p in covered) == sum(p.numel() for p in model.parameters())
    assert sum(u.case.costs.param_count for u in uses) == model_case(name).costs.param_count
    assert sum(u.case.costs.macs for u in uses) == model_case(name).costs.macs


def test_identical_blocks_are_one_entry_and_ids_are_unique():
    cases = lookup.table().cases
    assert len({c.id for c in cases}) == len(cases)
    l1 = [u.case.id for u in lookup.model_blocks("efficientformer_l1")]
    assert l1.count("blocks/efficientformer/meta4d/c224_h14") == 6
    assert l1[0] == "blocks/efficientformer/stem/c3_h224_oc48_oh56" and l1[-1].startswith(
        "blocks/efficientformer/head/"
    )
    assert sum("to3d" in i for i in l1) == 1 and sum("meta3d" in i for i in l1) == 1


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return x + self.fc(x)


class _Glue(nn.Module):
    """A container whose forward is not a chain of its children: it must stay one block."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return self.a(x) * self.b(x)


def test_only_chains_are_expanded():
    model = nn.Sequential(nn.Sequential(_Residual(), nn.Identity(), _Residual()), _Glue(), nn.ReLU())
    found = lookup.find_blocks(model, (1, 4))
    assert [b.path for b in found] == ["0.0", "0.2", "1", "2"]
    assert all(b.input_shape == (1, 4) for b in found)
