"""Variant configs state only what differs from their base.

A variant (InternImage-S/B over T, XL over L, H over L, G over H, 3x over 1x ...) inherits
a local ``_base_``; every value its own file assigns must differ from what that base
already gives. The variant table itself (depths, channels, groups, offset scale, number of
layers) lives in ``InternImage.arch_settings`` and reaches the configs through ``arch``;
the layer-decay constructor asks the backbone for the layers.

The variant's own values come from running its file alone (without resolving
``_base_``); the base's from ``Config.fromfile``, with its whole ``_base_`` chain. Nested
dicts are compared key by key, as mmengine merges them; lists and ``_delete_=True`` dicts
(which replace the base's value) are compared whole. A ``type`` key is not counted: it
names the component its sibling keys configure.
"""

import ast
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIRS = ('classification', 'detection', 'segmentation', 'quickstart')


def _local_base(path: Path) -> Optional[Path]:
    """The recipe config of this repository the config inherits (the first in a list of
    bases), else None."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets
        ):
            bases = ast.literal_eval(node.value)
            # A recipe config of this repository; shared pieces (configs/_base_/) and
            # upstream bases (``mmdet::``) do not make a file a variant.
            for base in [bases] if isinstance(bases, str) else bases:
                resolved = (path.parent / base).resolve()
                if '::' not in base and resolved.parent.name in CONFIG_DIRS:
                    return resolved
    return None


VARIANTS = sorted(
    str(path.relative_to(ROOT))
    for folder in CONFIG_DIRS
    for path in (ROOT / 'configs' / folder).glob('*.py')
    if _local_base(path) is not None
)


def _own_values(path: Path, base: Optional[Config] = None) -> Dict[str, Any]:
    """The top-level values the file itself assigns (its ``_base_`` not resolved). As
    mmengine does, the ``_base_`` assignment is dropped and the name ``_base_`` reads the
    base config, for files that start from a base value (``_base_.train_pipeline``)."""
    # ``{{_base_.name}}`` is mmengine's text substitution of a base value.
    source = re.sub(r'\{\{\s*(_base_\.[\w.]+)\s*\}\}', r'\1', path.read_text())
    tree = ast.parse(source)
    tree.body = [
        node
        for node in tree.body
        if not (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets)
        )
    ]
    namespace: Dict[str, Any] = {'_base_': base}
    exec(compile(tree, str(path), 'exec'), namespace)
    return {key: value for key, value in namespace.items() if not key.startswith('_')}


def _plain(value: Any) -> Any:
    """Dicts, lists and scalars only (tuples as lists, ConfigDicts as dicts)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def restated(own: Dict[str, Any], base: Dict[str, Any], where: str = '') -> List[str]:
    """Keys of ``own`` whose value equals what ``base`` already has there."""
    found = []
    for key, value in own.items():
        if key == 'type' or key not in base:
            continue
        name = f'{where}{key}'
        if isinstance(value, dict) and isinstance(base[key], dict):
            if value.get('_delete_'):
                replacement = {k: v for k, v in value.items() if k != '_delete_'}
                if _plain(replacement) == _plain(base[key]):
                    found.append(name)
            else:
                found += restated(value, base[key], name + '.')
        elif _plain(value) == _plain(base[key]):
            found.append(name)
    return found


def test_every_config_but_the_recipe_roots_is_a_variant():
    configs = {
        str(path.relative_to(ROOT))
        for folder in CONFIG_DIRS
        for path in (ROOT / 'configs' / folder).glob('*.py')
    }
    roots = {Path(path).name for path in configs - set(VARIANTS)}
    assert roots == {
        'internimage-t_8xb128_in1k.py',
        'mask-rcnn_internimage-t_fpn_1x_coco.py',
        'cascade-mask-rcnn_internimage-l_fpn_1x_coco.py',
        'internimage-t_upernet_8xb2-160k_ade20k-512x512.py',
        'internimage-t_upernet_8xb2-160k_cityscapes-512x1024.py',
        'dino-4scale_internimage-t_8xb2-12e_coco.py',
        'internimage-tiny_quickstart_cls.py',
        'mask-rcnn_internimage-tiny_quickstart.py',
        'dino_internimage-h-tiny_quickstart.py',
        'cascade-rcnn_internimage-xl_fpn_3x_crowdhuman.py',
        'upernet_internimage-tiny_quickstart.py',
        'mask2former_internimage-tiny_quickstart.py',
        'internimage-l_upernet_8xb2-160k_ade20k-640x640.py',
        'internimage-h_upernet_16xb1-160k_ade20k-896x896.py',
        'internimage-l_upernet_8xb2-160k_cityscapes-512x1024.py',
        'internimage-h_mask2former_16xb1-80k_coco-stuff164k-896x896.py',
        'internimage-h_mask2former_16xb1-80k_cocostuff2ade20k-896x896.py',
        'internimage-h_mask2former_16xb1-40k_cocostuff2cocostuff10k-512x512.py',
        'internimage-h_mask2former_16xb2-80k_mapillary-896x896.py',
        'internimage-h_mask2former_8xb2-80k_mapillary2cityscapes-1024x1024.py',
        'internimage-l_segformer_8xb2-80k_mapillary-512x1024.py',
        'internimage-l_segformer_8xb2-160k_mapillary2cityscapes-512x1024.py',
        'internimage-l_upernet_8xb2-80k_mapillary-512x1024.py',
        'internimage-l_upernet_8xb2-160k_mapillary2cityscapes-512x1024.py',
    }


def _merged_bases(path: Path, read_config) -> Config:
    """What ``_base_`` reads in the file: all its bases merged in order, as mmengine does."""
    tree = ast.parse(path.read_text())
    (bases,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets)
    ]
    merged = Config()
    for base in [bases] if isinstance(bases, str) else bases:
        if '::' in base:
            merged.merge_from_dict(Config.fromfile(base).to_dict())
        else:
            local = (path.parent / base).resolve().relative_to(ROOT)
            merged.merge_from_dict(read_config(local).to_dict())
    return merged


@pytest.mark.parametrize('path', VARIANTS)
def test_variant_restates_nothing_of_its_base(path, read_config):
    variant = ROOT / path
    base = _local_base(variant)
    read_config(path)  # the variant itself parses with its whole chain
    base_values = _plain(read_config(base.relative_to(ROOT)).to_dict())
    own = _own_values(variant, _merged_bases(variant, read_config))
    found = restated(own, base_values)
    assert not found, f'{path} restates values its base {base.name} already gives: {found}'


def test_restated_finds_equal_leaves_only():
    base = dict(
        model=dict(backbone=dict(type='InternImage', arch='t', drop_path_rate=0.2)),
        pipeline=[dict(type='A'), dict(type='B')],
        optim_wrapper=dict(paramwise_cfg=dict(layer_decay_rate=1.0)),
    )
    own = dict(
        model=dict(backbone=dict(type='InternImage', arch='s', drop_path_rate=0.2)),
        pipeline=[dict(type='A'), dict(type='B')],
        optim_wrapper=dict(paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.9)),
        new_value=1,
    )
    assert restated(own, base) == ['model.backbone.drop_path_rate', 'pipeline']


def test_config_to_dict_keeps_values():
    # The comparison relies on Config.to_dict giving the merged values.
    cfg = Config(dict(a=dict(b=(1, 2))))
    assert _plain(cfg.to_dict()) == dict(a=dict(b=[1, 2]))
