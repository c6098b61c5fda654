"""Property-based tests of the checkpoint loaders over generated key perturbations
(hypothesis; profiles in tests/conftest.py): renamed, dropped, extra and reshaped keys,
and the wrappers files come in (``module.`` prefix, ``state_dict`` / ``model`` dicts).

The expected result of each perturbation is the rule of docs/checkpoints.md, worked out
here from the perturbation itself:

* whole-model loads (mmengine's ``load_checkpoint``, as the tools and upstream APIs call
  it, and :func:`load_model_checkpoint`): a perfect fit loads; otherwise
  :class:`CheckpointMismatchError` with exactly the dropped / renamed-away keys missing,
  the extra / renamed-to keys unexpected and the reshaped keys named;
* the backbone loader (``init_cfg``): loads what matches and returns the missing and
  unexpected keys; a reshaped key is a ``ValueError``, no matching key a ``KeyError``.
"""

import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import load_checkpoint
from torch import nn

import internimage  # noqa: F401  (installs the strict loader)
from internimage.checkpoint import (
    CheckpointMismatchError,
    load_backbone_checkpoint,
    load_model_checkpoint,
)


class Net(BaseModel):
    """A whole model with a few differently shaped tensors (and no BN counters)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3)
        self.body = nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5))
        self.out = nn.Linear(5, 2, bias=False)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return inputs


KEYS = list(Net().state_dict())

perturbations = st.fixed_dictionaries(
    dict(
        dropped=st.sets(st.sampled_from(KEYS), max_size=3),
        renamed=st.sets(st.sampled_from(KEYS), max_size=2),
        extra=st.sets(st.sampled_from(['aux.weight', 'head.scale', 'stem.extra']), max_size=2),
        reshaped=st.sets(st.sampled_from(KEYS), max_size=2),
        module_prefix=st.booleans(),
        wrapper=st.sampled_from([None, 'state_dict']),
    )
)


def _perturbed(change: dict):
    """(file contents, expected missing, unexpected, reshaped keys)."""
    torch.manual_seed(0)
    weights = Net().state_dict()
    reshaped = sorted(change['reshaped'] - change['dropped'] - change['renamed'])
    for key in reshaped:
        weights[key] = torch.zeros(*weights[key].shape, 2)
    renamed_to = []
    for key in sorted(change['renamed'] - change['dropped']):
        weights[key + '_old'] = weights.pop(key)
        renamed_to.append(key + '_old')
    for key in change['dropped']:
        weights.pop(key)
    for key in change['extra']:
        weights[key] = torch.ones(1)
    missing = [k for k in KEYS if k in change['dropped'] or k in change['renamed']]
    unexpected = renamed_to + sorted(change['extra'])
    if change['module_prefix']:
        weights = {'module.' + k: v for k, v in weights.items()}
    contents = {change['wrapper']: weights} if change['wrapper'] else weights
    return contents, missing, unexpected, reshaped


def _check(load, change: dict) -> None:
    contents, missing, unexpected, reshaped = _perturbed(change)
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder, 'weights.pth'))
        torch.save(contents, path)
        model = Net()
        if not (missing or unexpected or reshaped):
            load(model, path)
            torch.manual_seed(0)
            for key, value in Net().state_dict().items():
                assert torch.equal(model.state_dict()[key], value), key
            return
        with pytest.raises(CheckpointMismatchError) as error:
            load(model, path)
    assert sorted(error.value.missing) == sorted(missing)
    assert sorted(error.value.unexpected) == sorted(unexpected)
    assert sorted(entry.split(':')[0] for entry in error.value.reshaped) == reshaped
    assert str(error.value).startswith(f'checkpoint {path} does not fit the model: ')


@given(change=perturbations)
def test_mmengine_whole_model_load(change):
    _check(load_checkpoint, change)


@given(change=perturbations)
def test_load_model_checkpoint(change):
    _check(load_model_checkpoint, change)


def test_official_model_wrapper_needs_conversion(tmp_path):
    """mmengine reads ``state_dict`` only: a ``{'model': ...}`` file (an official
    classification checkpoint) is refused with the hint to convert it."""
    path = tmp_path / 'official.pth'
    torch.save({'model': Net().state_dict()}, path)
    with pytest.raises(CheckpointMismatchError, match='convert it with tools/convert_checkpoint'):
        load_checkpoint(Net(), str(path))
    load_model_checkpoint(Net(), str(path))  # ours unwraps it


# ------------------------------------------------------------------ backbone loader
class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, 4, 3)
        self.levels = nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5))


BACKBONE_KEYS = list(Backbone().state_dict())


@given(
    dropped=st.sets(st.sampled_from(BACKBONE_KEYS), max_size=4),
    extra=st.sets(st.sampled_from(['levels.9.weight', 'patch_embed.extra']), max_size=2),
    reshaped=st.sets(st.sampled_from(BACKBONE_KEYS), max_size=1),
    layout=st.sampled_from(['classification', 'detection', 'distributed']),
)
def test_backbone_loader(dropped, extra, reshaped, layout):
    torch.manual_seed(0)
    weights = Backbone().state_dict()
    reshaped = reshaped - dropped
    for key in reshaped:
        weights[key] = torch.zeros(*weights[key].shape, 2)
    for key in dropped:
        weights.pop(key)
    for key in extra:
        weights[key] = torch.ones(1)
    if layout == 'classification':
        contents = {'model': {**weights, 'head.weight': torch.ones(2, 5)}}
    else:
        prefix = 'module.backbone.' if layout == 'distributed' else 'backbone.'
        contents = {'state_dict': {prefix + k: v for k, v in weights.items()}}
        contents['state_dict']['neck.weight'] = torch.ones(1)  # not the backbone's: ignored
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder, 'weights.pth'))
        torch.save(contents, path)
        backbone = Backbone()
        if reshaped:
            with pytest.raises(ValueError, match=f'{path} does not fit this backbone'):
                load_backbone_checkpoint(backbone, path)
            return
        if len(dropped) == len(BACKBONE_KEYS):
            with pytest.raises(KeyError, match=f'{path} has no InternImage backbone weights'):
                load_backbone_checkpoint(backbone, path)
            return
        missing, unexpected = load_backbone_checkpoint(backbone, path)
    assert sorted(missing) == sorted(dropped)
    assert sorted(unexpected) == sorted(extra)
    for key, value in weights.items():
        if key not in extra:
            assert torch.equal(backbone.state_dict()[key], value), key
