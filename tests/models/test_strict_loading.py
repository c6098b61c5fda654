"""Whole-model checkpoint loads refuse a file that does not fit or cannot be read
(internimage.checkpoint.strict), through mmengine's loader as patched at ``import
internimage`` and through our own :func:`load_model_checkpoint`.

The model here is a two-layer mmengine ``BaseModel``; the expected missing / unexpected /
reshaped keys are written out by hand for each perturbation of its state dict.
"""

import inspect
import os
import sys
import zipfile

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint
from torch import nn

import internimage  # noqa: F401  (installs the strict loader)
from internimage.checkpoint import (
    CheckpointMismatchError,
    CheckpointReadError,
    UntrustedCheckpointError,
    check_checkpoint_file,
    load_model_checkpoint,
    partial_checkpoint_loading,
)
from internimage.checkpoint.strict import _PATCH_MARK


class TinyModel(BaseModel):
    """A whole model as mmengine sees it: ``linear.weight/bias`` and a BN."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.norm = nn.BatchNorm1d(2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.norm(self.linear(inputs))


def _save(path, state_dict, wrap='state_dict'):
    torch.save({wrap: state_dict} if wrap else state_dict, path)
    return str(path)


@pytest.fixture
def weights():
    torch.manual_seed(0)
    return TinyModel().state_dict()


# ------------------------------------------------------------------ the upstream contract
def test_the_mmengine_functions_the_patch_wraps_are_unchanged():
    """The patch relies on mmengine 0.10's signatures and on these functions being looked
    up through their module at call time; this fails when an upgrade changes either."""
    read = CheckpointLoader.load_checkpoint
    load_state_dict = mmengine_checkpoint.load_state_dict
    assert hasattr(read, _PATCH_MARK) and hasattr(load_state_dict, _PATCH_MARK)
    assert list(inspect.signature(getattr(read, _PATCH_MARK)).parameters) == [
        'filename',
        'map_location',
        'logger',
    ]
    assert list(inspect.signature(getattr(load_state_dict, _PATCH_MARK)).parameters) == [
        'module',
        'state_dict',
        'strict',
        'logger',
    ]
    # Every whole-model entry point reaches them through these two module-level names.
    assert 'CheckpointLoader' in mmengine_checkpoint._load_checkpoint.__code__.co_names
    to_model = mmengine_checkpoint._load_checkpoint_to_model
    assert 'load_state_dict' in to_model.__code__.co_names
    assert to_model.__globals__ is vars(mmengine_checkpoint)
    from mmengine.infer import infer
    from mmengine.runner import runner

    assert runner._load_checkpoint_to_model is to_model
    assert infer._load_checkpoint_to_model is to_model
    assert runner._load_checkpoint is infer._load_checkpoint is mmengine_checkpoint._load_checkpoint


def test_installing_twice_wraps_once():
    from internimage.checkpoint import install_strict_checkpoint_loading

    before = mmengine_checkpoint.load_state_dict
    install_strict_checkpoint_loading()
    assert mmengine_checkpoint.load_state_dict is before


# ------------------------------------------------------------------ key mismatches
def test_a_fitting_file_loads(tmp_path, weights):
    path = _save(tmp_path / 'ok.pth', {'module.' + k: v for k, v in weights.items()})
    model = TinyModel()
    load_checkpoint(model, path)  # module. is stripped by mmengine's revise_keys
    assert torch.equal(model.linear.weight, weights['linear.weight'])


@pytest.mark.parametrize(
    'change, expected',
    [
        (
            'drop',
            'checkpoint {path} does not fit the model: 1 missing key(s) '
            '(model weights not in the file): linear.bias',
        ),
        ('extra', '1 unexpected key(s) (not in the model): head.weight'),
        ('reshape', '1 shape mismatch(es): linear.weight: file (2, 4) vs model (2, 3)'),
        (
            'rename',
            '1 missing key(s) (model weights not in the file): norm.weight; '
            '1 unexpected key(s) (not in the model): norm.gamma',
        ),
    ],
)
def test_mismatch_is_refused_naming_file_and_keys(tmp_path, weights, change, expected):
    if change == 'drop':
        del weights['linear.bias']
    elif change == 'extra':
        weights['head.weight'] = torch.zeros(1)
    elif change == 'reshape':
        weights['linear.weight'] = torch.zeros(2, 4)
    else:
        weights['norm.gamma'] = weights.pop('norm.weight')
    path = _save(tmp_path / 'bad.pth', weights)
    model = TinyModel()
    before = model.linear.weight.clone()
    with pytest.raises(CheckpointMismatchError) as error:
        load_checkpoint(model, path)
    assert expected.format(path=path) in str(error.value)
    assert '--allow-partial' in str(error.value)
    assert torch.equal(model.linear.weight, before), 'refused before anything was loaded'
    # Our own loader gives the same answer.
    with pytest.raises(CheckpointMismatchError, match='does not fit the model'):
        load_model_checkpoint(TinyModel(), path)


def test_only_the_first_names_are_listed(tmp_path):
    path = _save(tmp_path / 'many.pth', {f'extra{i}': torch.zeros(1) for i in range(9)})
    with pytest.raises(CheckpointMismatchError) as error:
        load_checkpoint(TinyModel(), path)
    message = str(error.value)
    assert (
        '9 unexpected key(s) (not in the model): extra0, extra1, extra2, extra3, extra4, ...'
        in message
    )
    assert 'extra5' not in message
    # linear.weight/bias, norm.weight/bias/running_mean/running_var (the counter is ignored)
    assert '6 missing key(s)' in message
    assert error.value.unexpected == [f'extra{i}' for i in range(9)]


def test_missing_batchnorm_counter_is_not_a_mismatch(tmp_path, weights):
    del weights['norm.num_batches_tracked']  # mmengine ignores it too
    load_checkpoint(TinyModel(), _save(tmp_path / 'ok.pth', weights))


def test_partial_load_is_an_explicit_choice(tmp_path, weights):
    del weights['linear.bias']
    weights['head.weight'] = torch.zeros(1)
    path = _save(tmp_path / 'partial.pth', weights)
    model = TinyModel()
    with partial_checkpoint_loading():
        load_checkpoint(model, path)
    assert torch.equal(model.linear.weight, weights['linear.weight'])
    with partial_checkpoint_loading(False), pytest.raises(CheckpointMismatchError):
        load_checkpoint(TinyModel(), path)
    with pytest.raises(CheckpointMismatchError):  # the context ended
        load_checkpoint(TinyModel(), path)
    model = TinyModel()
    load_model_checkpoint(model, path, allow_partial=True)
    assert torch.equal(model.linear.weight, weights['linear.weight'])


def test_loads_into_parts_keep_mmengines_rules(tmp_path, weights):
    """init_cfg-style loads into a submodule (not a whole BaseModel) stay partial."""
    path = _save(tmp_path / 'linear.pth', {'weight': weights['linear.weight'], 'x': torch.ones(1)})
    linear = nn.Linear(3, 2)
    load_checkpoint(linear, path)
    assert torch.equal(linear.weight, weights['linear.weight'])


# ------------------------------------------------------------------ unreadable files
def _truncated(tmp_path, weights):
    path = tmp_path / 'half.pth'
    _save(path, weights)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _flipped(tmp_path, weights):
    path = tmp_path / 'flipped.pth'
    _save(path, {'w': torch.arange(4096, dtype=torch.float32)})
    with zipfile.ZipFile(path) as archive:
        member = next(info for info in archive.infolist() if info.file_size >= 4096 * 4)
    data = bytearray(path.read_bytes())
    data[member.header_offset + 200 + member.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _legacy_garbage(tmp_path, weights):
    path = tmp_path / 'garbage.pth'
    path.write_bytes(b'\x80\x02' + os.urandom(64))  # a pickle header, then noise
    return path


def _directory(tmp_path, weights):
    path = tmp_path / 'ckpt.pth'
    path.mkdir()
    return path


def _empty(tmp_path, weights):
    path = tmp_path / 'empty.pth'
    path.write_bytes(b'')
    return path


BROKEN = [
    (_truncated, 'is not a readable torch checkpoint (truncated or corrupted?)'),
    (_flipped, 'is corrupted: CRC mismatch'),
    (_legacy_garbage, 'is not a readable torch checkpoint (truncated or corrupted?)'),
    (_directory, 'is a directory, not a checkpoint file'),
    (_empty, 'is empty (0 bytes)'),
]


@pytest.mark.parametrize('make, problem', BROKEN, ids=lambda x: getattr(x, '__name__', ''))
def test_broken_file_is_named(tmp_path, weights, make, problem):
    path = make(tmp_path, weights)
    loads = [
        lambda: load_checkpoint(TinyModel(), str(path)),
        lambda: load_model_checkpoint(TinyModel(), str(path)),
    ]
    if make is not _legacy_garbage:  # the legacy pickle format is only checked when read
        loads.append(lambda: check_checkpoint_file(str(path)))
    for load in loads:
        with pytest.raises(CheckpointReadError) as error:
            load()
        assert f'{path} {problem}' in str(error.value)
        assert error.value.path == str(path)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='/proc is Linux')
def test_unreadable_file_is_named():
    # Reading /proc/self/mem at offset 0 fails with EIO (even for root, unlike chmod 000).
    with pytest.raises(CheckpointReadError, match='/proc/self/mem cannot be read'):
        load_checkpoint(TinyModel(), '/proc/self/mem')


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f'checkpoint not found: {tmp_path}/nope.pth'):
        load_checkpoint(TinyModel(), str(tmp_path / 'nope.pth'))


def test_untrusted_type_is_still_reported_as_such(tmp_path, weights):
    import argparse

    path = tmp_path / 'with_args.pth'
    torch.save({'state_dict': weights, 'args': argparse.Namespace(lr=1)}, path)
    with pytest.raises(UntrustedCheckpointError, match='argparse.Namespace'):
        load_checkpoint(TinyModel(), str(path))
