"""Checkpoint reading: URLs (a file served on 127.0.0.1), safe loading (``weights_only``
passed to every ``torch.load`` explicitly, with no process-wide ``TORCH_FORCE_*`` switch),
and the explicit opt-in for files that pickle more than tensors."""

import argparse
import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import internimage.models.internimage as internimage_module
from internimage import InternImage
from internimage.checkpoint import (
    TRUST_OPTION,
    UntrustedCheckpointError,
    load_backbone_checkpoint,
    load_checkpoint_file,
)
from tests.models.official_keys import (
    TINY_ARCH,
    official_backbone_shapes,
    random_state_dict,
    use_reference_op,
)

ROOT = Path(__file__).resolve().parents[2]
DET_CONFIG = 'configs/quickstart/mask-rcnn_internimage-tiny_quickstart.py'
QUICKSTART_ARCH = dict(channels=32, depths=[1, 1, 2, 1], groups=[2, 4, 8, 16])


def _official_backbone(arch: dict, seed: int = 0) -> dict:
    shapes = official_backbone_shapes(arch['channels'], arch['depths'], arch['groups'])
    return random_state_dict(shapes, seed)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Serves ``tmp_path/'www'`` on 127.0.0.1; returns (directory, base URL). torch's hub
    cache (where mmengine's URL loader downloads) goes to ``tmp_path/'hub'``."""
    www = tmp_path / 'www'
    www.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def load_modes(monkeypatch):
    """Records, for every torch.load, whether it unpickled fully (the argument it was
    given: no environment switch may decide it)."""
    real_load = torch.load
    modes = []

    def watched(*args, **kwargs):
        assert not [name for name in os.environ if name.startswith('TORCH_FORCE')]
        modes.append('weights_only' if kwargs['weights_only'] else 'full')
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', watched)
    return modes


def test_config_init_cfg_url_loads_exactly(served, load_modes, monkeypatch):
    """A detection file (state_dict under backbone.) on an HTTP server; the quick-start
    Mask R-CNN config with init_cfg.checkpoint = its URL loads every backbone key."""
    www, base = served
    weights = _official_backbone(QUICKSTART_ARCH, seed=3)
    sd = {'backbone.' + k: v for k, v in weights.items()}
    sd['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
    torch.save({'meta': {'epoch': 12}, 'state_dict': sd}, www / 'mask_rcnn_official.pth')

    reports = []

    def recording(*args, **kwargs):
        reports.append(load_backbone_checkpoint(*args, **kwargs))
        return reports[-1]

    monkeypatch.setattr(internimage_module, 'load_backbone_checkpoint', recording)
    cfg = Config.fromfile(str(ROOT / DET_CONFIG))
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=f'{base}/mask_rcnn_official.pth'
    )
    cfg.model.backbone.use_reference = use_reference_op()
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        model.init_weights()

    assert reports == [([], [])], 'missing / unexpected keys'
    own = model.backbone.state_dict()
    assert set(own) == set(weights)
    for key, value in weights.items():
        assert torch.equal(own[key], value), key
    assert load_modes == ['weights_only']  # mmengine's URL loader would pass False
    assert (Path(os.environ['TORCH_HOME']) / 'hub' / 'checkpoints').is_dir()  # cached


def test_url_mismatch_is_still_loud(served):
    www, base = served
    torch.save({'model': _official_backbone(QUICKSTART_ARCH)}, www / 'other_arch.pth')
    backbone = InternImage(arch=dict(TINY_ARCH), use_reference=use_reference_op())
    with pytest.raises(ValueError, match='shape'):
        load_backbone_checkpoint(backbone, f'{base}/other_arch.pth')


def test_url_with_pickled_object_refused_then_trusted(served, load_modes):
    www, base = served
    weights = _official_backbone(TINY_ARCH)
    torch.save({'model': weights, 'config': argparse.Namespace(lr=1e-3)}, www / 'cfg.pth')
    url = f'{base}/cfg.pth'
    with pytest.raises(UntrustedCheckpointError, match='argparse.Namespace'):
        load_checkpoint_file(url)
    assert load_modes == ['weights_only']
    checkpoint = load_checkpoint_file(url, trust=True)
    assert checkpoint['config'].lr == 1e-3
    assert load_modes[-1] == 'full'


class _TrainingConfig:
    """A non-tensor object saved beside the weights, as training scripts do."""

    def __init__(self):
        self.epochs = 300


def test_pickled_object_clear_error_and_opt_in(tmp_path, load_modes):
    """Default: the error names the type and the opt-in; with the opt-in: exact load."""
    weights = _official_backbone(TINY_ARCH, seed=5)
    path = tmp_path / 'internimage_t_official.pth'
    torch.save({'model': weights, 'args': _TrainingConfig()}, path)

    backbone = InternImage(
        arch=dict(TINY_ARCH),
        init_cfg=dict(type='Pretrained', checkpoint=str(path)),
        use_reference=use_reference_op(),
    )
    with pytest.raises(UntrustedCheckpointError) as error:
        backbone.init_weights()
    message = str(error.value)
    assert f'{__name__}._TrainingConfig' in message
    assert error.value.global_name == f'{__name__}._TrainingConfig'
    assert 'trust_checkpoint=True' in message and '--trust-checkpoint' in message
    assert TRUST_OPTION in message
    assert set(load_modes) == {'weights_only'}

    trusted = InternImage(
        arch=dict(TINY_ARCH),
        init_cfg=dict(type='Pretrained', checkpoint=str(path), trust_checkpoint=True),
        use_reference=use_reference_op(),
    )
    trusted.init_weights()
    assert load_modes[-1] == 'full'
    own = trusted.state_dict()
    assert set(own) == set(weights)
    for key, value in weights.items():
        assert torch.equal(own[key], value), key
    # The opt-in was for that one read: the next default read is weights_only again.
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint_file(str(path))


def test_convert_tool_needs_trust_for_pickled_objects(tmp_path):
    from tests.models.official_keys import official_cls_head_shapes

    official = {
        **_official_backbone(TINY_ARCH),
        **random_state_dict(official_cls_head_shapes(128, 10), seed=2),
    }
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save({'model': official, 'config': argparse.Namespace(model='t')}, src)
    tool = [sys.executable, str(ROOT / 'tools' / 'convert_checkpoint.py'), str(src), str(dst)]
    refused = subprocess.run(tool, capture_output=True, text=True)
    assert refused.returncode != 0
    assert 'argparse.Namespace' in refused.stderr and '--trust-checkpoint' in refused.stderr
    assert not dst.exists()
    subprocess.run([*tool, '--trust-checkpoint'], check=True, capture_output=True)
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert len(converted) == len(official)


def test_missing_file_and_model_zoo_alias_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='checkpoint not found: .*absent.pth'):
        load_checkpoint_file(str(tmp_path / 'absent.pth'))
    with pytest.raises(ValueError, match='open-mmlab://resnet50_v1c: mmengine model-zoo'):
        load_checkpoint_file('open-mmlab://resnet50_v1c')


def test_reads_keep_the_import_time_allow_list(tmp_path):
    """The allow-list that ``import internimage`` registered survives our reads (a
    ``safe_globals`` context would remove it on exit), so the upstream APIs keep working."""
    from mmengine.logging import HistoryBuffer

    path = tmp_path / 'plain.pth'
    torch.save({'model': _official_backbone(TINY_ARCH)}, path)
    load_checkpoint_file(str(path))
    with pytest.raises(UntrustedCheckpointError):
        torch.save({'model': {}, 'x': _TrainingConfig()}, path)
        load_checkpoint_file(str(path))
    assert HistoryBuffer in torch.serialization.get_safe_globals()
