"""Official whole-model segmentation checkpoints load into our configs with no missing or
unexpected key (``internimage.checkpoint.segmentation``).

The official state dicts are written here from the official module code (OpenGVLab/
InternImage ``segmentation/``: mmseg 0.x ``UPerHead`` / ``FCNHead`` / ``SegformerHead``,
and the custom ``Mask2FormerHead`` with its ``MSDeformAttnPixelDecoder`` and mmcv 1.x
transformer layers): every key name and shape by the official construction rules, not
taken from our models. The backbone keeps the official names (tests/models/test_checkpoint*),
so its part is the built backbone's own. The converted dict must then load with
``strict=True`` into the model our config builds (on the meta device: names and shapes
are what is checked); a second test follows tensors from official keys to the modules of
the same role.
"""

from typing import Dict, List, Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import internimage  # noqa: F401
from internimage.apis import enable_tta
from internimage.checkpoint import extract_state_dict
from internimage.checkpoint.segmentation import convert_segmentation_checkpoint
from tests.tool_runs import load_tool

Shapes = Dict[str, Tuple[int, ...]]
SEG = 'configs/segmentation'


def _conv_module(prefix: str, out: int, inp: int, kernel: int, norm: str, bias: bool) -> Shapes:
    """mmcv ConvModule: ``conv`` (+ bias when asked) and its norm layer (``bn`` / ``gn``)."""
    shapes = {f'{prefix}.conv.weight': (out, inp, kernel, kernel)}
    if bias:
        shapes[f'{prefix}.conv.bias'] = (out,)
    shapes[f'{prefix}.{norm}.weight'] = (out,)
    shapes[f'{prefix}.{norm}.bias'] = (out,)
    if norm == 'bn':
        shapes.update({f'{prefix}.bn.running_mean': (out,), f'{prefix}.bn.running_var': (out,)})
        shapes[f'{prefix}.bn.num_batches_tracked'] = ()
    return shapes


def _linear(prefix: str, out: int, inp: int) -> Shapes:
    return {f'{prefix}.weight': (out, inp), f'{prefix}.bias': (out,)}


def _ffn(prefix: str, dims: int, hidden: int) -> Shapes:
    # mmcv 1.x FFN: layers = [Sequential(Linear, act, Dropout), Linear, Dropout]
    return {
        **_linear(f'{prefix}.layers.0.0', hidden, dims),
        **_linear(f'{prefix}.layers.1', dims, hidden),
    }


def _layer_norms(prefix: str, count: int, dims: int) -> Shapes:
    return {
        f'{prefix}.norms.{k}.{name}': (dims,) for k in range(count) for name in ('weight', 'bias')
    }


def official_uperhead(in_channels: List[int], classes: int, channels: int = 512) -> Shapes:
    """mmseg 0.x UPerHead (pool scales 1, 2, 3, 6) + FCNHead (one conv) on stage 3."""
    head: Shapes = {}
    for i in range(4):  # PPM: Sequential(AdaptiveAvgPool2d, ConvModule)
        head.update(_conv_module(f'psp_modules.{i}.1', channels, in_channels[-1], 1, 'bn', False))
    head.update(
        _conv_module('bottleneck', channels, in_channels[-1] + 4 * channels, 3, 'bn', False)
    )
    for i, width in enumerate(in_channels[:-1]):
        head.update(_conv_module(f'lateral_convs.{i}', channels, width, 1, 'bn', False))
        head.update(_conv_module(f'fpn_convs.{i}', channels, channels, 3, 'bn', False))
    head.update(_conv_module('fpn_bottleneck', channels, 4 * channels, 3, 'bn', False))
    head.update({'conv_seg.weight': (classes, channels, 1, 1), 'conv_seg.bias': (classes,)})
    aux = _conv_module('convs.0', 256, in_channels[2], 3, 'bn', False)
    aux.update({'conv_seg.weight': (classes, 256, 1, 1), 'conv_seg.bias': (classes,)})
    return {
        **{f'decode_head.{k}': v for k, v in head.items()},
        **{f'auxiliary_head.{k}': v for k, v in aux.items()},
    }


def official_segformer_head(in_channels: List[int], classes: int, channels: int = 256) -> Shapes:
    """mmseg 0.x SegformerHead: a 1x1 ConvModule per stage, a fusion ConvModule, conv_seg."""
    head: Shapes = {}
    for i, width in enumerate(in_channels):
        head.update(_conv_module(f'convs.{i}', channels, width, 1, 'bn', False))
    head.update(_conv_module('fusion_conv', channels, 4 * channels, 1, 'bn', False))
    head.update({'conv_seg.weight': (classes, channels, 1, 1), 'conv_seg.bias': (classes,)})
    return {f'decode_head.{k}': v for k, v in head.items()}


def official_mask2former_head(
    in_channels: List[int], classes: int, dims: int, heads: int, queries: int, decoder_ffn: int
) -> Shapes:
    """The official mmseg_custom Mask2FormerHead (encoder 6 layers, decoder 9 layers,
    3 feature levels, 4 sampling points)."""
    levels, points = 3, 4
    head: Shapes = {}
    # pixel decoder: input convs from the lowest resolution (stage 4) to stage 2, GN
    for i, width in enumerate(in_channels[:0:-1]):
        head.update(_conv_module(f'pixel_decoder.input_convs.{i}', dims, width, 1, 'gn', True))
    for layer in range(6):  # BaseTransformerLayer: attentions[0], ffns[0], norms[0..1]
        prefix = f'pixel_decoder.encoder.layers.{layer}'
        attention = f'{prefix}.attentions.0'
        head.update(_linear(f'{attention}.sampling_offsets', heads * levels * points * 2, dims))
        head.update(_linear(f'{attention}.attention_weights', heads * levels * points, dims))
        head.update(_linear(f'{attention}.value_proj', dims, dims))
        head.update(_linear(f'{attention}.output_proj', dims, dims))
        head.update(_ffn(f'{prefix}.ffns.0', dims, 4 * dims))
        head.update(_layer_norms(prefix, 2, dims))
    head['pixel_decoder.level_encoding.weight'] = (levels, dims)
    head.update(_conv_module('pixel_decoder.lateral_convs.0', dims, in_channels[0], 1, 'gn', False))
    head.update(_conv_module('pixel_decoder.output_convs.0', dims, dims, 3, 'gn', False))
    head.update(_linear('pixel_decoder.mask_feature', dims, dims))
    head['pixel_decoder.mask_feature.weight'] = (dims, dims, 1, 1)
    for layer in range(9):  # DetrTransformerDecoderLayer: cross, norm, self, norm, ffn, norm
        prefix = f'transformer_decoder.layers.{layer}'
        for index in range(2):
            attention = f'{prefix}.attentions.{index}.attn'
            head[f'{attention}.in_proj_weight'] = (3 * dims, dims)
            head[f'{attention}.in_proj_bias'] = (3 * dims,)
            head.update(_linear(f'{attention}.out_proj', dims, dims))
        head.update(_ffn(f'{prefix}.ffns.0', dims, decoder_ffn))
        head.update(_layer_norms(prefix, 3, dims))
    head.update(
        {
            'transformer_decoder.post_norm.weight': (dims,),
            'transformer_decoder.post_norm.bias': (dims,),
        }
    )
    head.update({'query_embed.weight': (queries, dims), 'query_feat.weight': (queries, dims)})
    head['level_embed.weight'] = (levels, dims)
    head.update(_linear('cls_embed', classes + 1, dims))
    for index in (0, 2, 4):
        head.update(_linear(f'mask_embed.{index}', dims, dims))
    return {f'decode_head.{k}': v for k, v in head.items()}


def _build_on_meta(path: str, read_config):
    cfg = read_config(path)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def _official_state_dict(model, head: Shapes) -> Dict[str, torch.Tensor]:
    """An official file's state dict (meta tensors: names and shapes only): the backbone's
    own keys, the heads' by the official rules."""
    shapes = {f'backbone.{k}': tuple(v.shape) for k, v in model.backbone.state_dict().items()}
    shapes.update(head)
    return {key: torch.empty(shape, device='meta') for key, shape in shapes.items()}


L_WIDTHS = [160, 320, 640, 1280]
H_WIDTHS = [320, 640, 1280, 2560]
CASES = {
    # config -> (official head layout, num_classes to keep)
    'internimage-h_upernet_16xb1-160k_ade20k-896x896': (official_uperhead(H_WIDTHS, 150), None),
    'internimage-l_upernet_8xb2-160k_mapillary2cityscapes-512x1024': (
        official_uperhead(L_WIDTHS, 150),
        19,
    ),  # the official Cityscapes heads keep 150
    'internimage-l_segformer_8xb2-160k_mapillary2cityscapes-512x1024': (
        official_segformer_head(L_WIDTHS, 150),
        19,
    ),
    'internimage-h_mask2former_16xb1-80k_cocostuff2ade20k-896x896': (
        official_mask2former_head(H_WIDTHS, 150, 1024, 32, 200, 4096),
        None,
    ),
    'internimage-h_mask2former_8xb2-80k_mapillary2cityscapes-1024x1024': (
        official_mask2former_head(H_WIDTHS, 19, 256, 8, 100, 2048),
        None,
    ),
}


@pytest.mark.parametrize('stem', sorted(CASES))
def test_official_whole_model_loads_exactly(stem, read_config):
    head, num_classes = CASES[stem]
    model = _build_on_meta(f'{SEG}/{stem}.py', read_config)
    official = _official_state_dict(model, head)
    wrapped = {'meta': {}, 'state_dict': {f'module.{k}': v for k, v in official.items()}}
    converted = convert_segmentation_checkpoint(
        extract_state_dict(wrapped), num_classes=num_classes
    )
    result = model.load_state_dict(converted, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert len(converted) == len(official)


def test_mask2former_layers_keep_their_roles():
    """attentions.0 of a decoder layer is its cross-attention (official operation order
    cross_attn, norm, self_attn, norm, ffn, norm), attentions.1 its self-attention; the
    encoder's attentions.0 its (deformable) self-attention."""
    official = {
        'decode_head.transformer_decoder.layers.3.attentions.0.attn.in_proj_weight': torch.zeros(1),
        'decode_head.transformer_decoder.layers.3.attentions.1.attn.in_proj_weight': torch.ones(1),
        'decode_head.transformer_decoder.layers.3.ffns.0.layers.1.weight': torch.full((1,), 2.0),
        'decode_head.transformer_decoder.layers.3.norms.2.weight': torch.full((1,), 3.0),
        'decode_head.pixel_decoder.encoder.layers.5.attentions.0.value_proj.weight': torch.full(
            (1,), 4.0
        ),  # noqa: E501
        'decode_head.pixel_decoder.encoder.layers.5.ffns.0.layers.0.0.bias': torch.full((1,), 5.0),
        'decode_head.query_feat.weight': torch.full((1,), 6.0),
        'backbone.levels.0.blocks.0.dcn.offset.weight': torch.full((1,), 7.0),
    }
    converted = convert_segmentation_checkpoint(official)
    assert {k: float(v) for k, v in converted.items()} == {
        'decode_head.transformer_decoder.layers.3.cross_attn.attn.in_proj_weight': 0.0,
        'decode_head.transformer_decoder.layers.3.self_attn.attn.in_proj_weight': 1.0,
        'decode_head.transformer_decoder.layers.3.ffn.layers.1.weight': 2.0,
        'decode_head.transformer_decoder.layers.3.norms.2.weight': 3.0,
        'decode_head.pixel_decoder.encoder.layers.5.self_attn.value_proj.weight': 4.0,
        'decode_head.pixel_decoder.encoder.layers.5.ffn.layers.0.0.bias': 5.0,
        'decode_head.query_feat.weight': 6.0,
        'backbone.levels.0.blocks.0.dcn.offset.weight': 7.0,
    }


def test_num_classes_keeps_the_first_outputs():
    official = {
        'decode_head.conv_seg.weight': torch.arange(150.0).reshape(150, 1, 1, 1),
        'decode_head.conv_seg.bias': torch.arange(150.0),
        'auxiliary_head.conv_seg.bias': torch.arange(150.0),
    }
    converted = convert_segmentation_checkpoint(official, num_classes=19)
    assert all(torch.equal(v.flatten(), torch.arange(19.0)) for v in converted.values())


@pytest.mark.parametrize(
    'state_dict, num_classes, message',
    [
        ({'head.fc.weight': torch.zeros(1)}, None, 'outside'),
        ({'decode_head.conv_seg.bias': torch.zeros(19)}, 150, '1..19'),
        ({'decode_head.cls_embed.bias': torch.zeros(20)}, 19, 'no conv_seg'),
    ],
)
def test_bad_input_is_refused(state_dict, num_classes, message):
    with pytest.raises(ValueError, match=message):
        convert_segmentation_checkpoint(state_dict, num_classes=num_classes)


def test_convert_tool_writes_a_loadable_segmentation_file(tmp_path):
    official = {
        'decode_head.transformer_decoder.layers.0.attentions.1.attn.in_proj_bias': torch.ones(3),
        'decode_head.conv_seg.weight': torch.zeros(150, 4, 1, 1),
        'backbone.levels.0.norm.0.weight': torch.ones(4),
    }
    src, dst = tmp_path / 'official.pth', tmp_path / 'out' / 'converted.pth'
    torch.save({'state_dict': {f'module.{k}': v for k, v in official.items()}, 'meta': {}}, src)
    load_tool('convert_checkpoint.py').main(
        [str(src), str(dst), '--task', 'segmentation', '--num-classes', '19']
    )
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert {k: tuple(v.shape) for k, v in converted.items()} == {
        'decode_head.transformer_decoder.layers.0.self_attn.attn.in_proj_bias': (3,),
        'decode_head.conv_seg.weight': (19, 4, 1, 1),
        'backbone.levels.0.norm.0.weight': (4,),
    }
    with pytest.raises(SystemExit):  # --num-classes is a segmentation option
        load_tool('convert_checkpoint.py').parse_args(
            ['a', 'b', '--task', 'detection', '--num-classes', '19']
        )


def test_test_tool_tta_uses_the_configs_tta_pipeline(read_config):
    cfg = read_config(f'{SEG}/internimage-h_mask2former_16xb1-80k_cocostuff2ade20k-896x896_ms.py')
    model = cfg.model
    enable_tta(cfg)
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module == model
    assert cfg.test_dataloader.dataset.pipeline == cfg.tta_pipeline
    plain = read_config(f'{SEG}/internimage-h_mask2former_16xb1-80k_cocostuff2ade20k-896x896.py')
    plain = Config(plain.to_dict())
    plain._cfg_dict.pop('tta_model')
    with pytest.raises(ValueError, match='tta_model'):
        enable_tta(plain)
