"""tools/convert_checkpoint.py: an official-layout classification file (built from the key
names of docs/checkpoints.md) becomes a checkpoint our mmpretrain classifier loads strictly,
and the head computes what the official head computes with the same tensors."""

import os.path as osp
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import load_checkpoint

from internimage.checkpoint import convert_classification_checkpoint, load_checkpoint_file
from tests.models.official_keys import (
    TINY_ARCH,
    official_attn_pool_head_shapes,
    official_backbone_shapes,
    official_cls_head_shapes,
    random_state_dict,
    use_reference_op,
)

ROOT = str(Path(__file__).resolve().parents[2])  # the repository
NUM_CLASSES = 10


def _classifier(attn_pool: bool):
    from mmpretrain.models import ImageClassifier

    head = (
        dict(type='InternImageAttnPoolClsHead', num_classes=NUM_CLASSES, in_channels=128)
        if attn_pool
        else dict(type='InternImageClsHead', num_classes=NUM_CLASSES, in_channels=128)
    )
    return ImageClassifier(
        backbone=dict(
            type='InternImage',
            arch=dict(TINY_ARCH),
            out_indices=(2, 3) if attn_pool else (3,),
            use_reference=use_reference_op(),
        ),
        head=head,
    ).eval()


def _convert(tmp_path, official: dict, via_subprocess: bool = False) -> str:
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted' / 'mmpretrain.pth'
    torch.save({'model': official, 'epoch': 300}, src)
    if via_subprocess:
        subprocess.run(
            [sys.executable, osp.join(ROOT, 'tools', 'convert_checkpoint.py'), str(src), str(dst)],
            check=True,
            cwd=str(tmp_path),
        )
    else:  # what the tool does, in process
        converted = convert_classification_checkpoint(load_checkpoint_file(str(src)))
        dst.parent.mkdir()
        torch.save({'state_dict': converted}, dst)
    return str(dst)


def test_convert_cls_checkpoint_end_to_end(tmp_path):
    backbone = random_state_dict(official_backbone_shapes(**TINY_ARCH), seed=1)
    head = random_state_dict(official_cls_head_shapes(128, NUM_CLASSES), seed=2)
    path = _convert(tmp_path, {**backbone, **head}, via_subprocess=True)
    assert set(torch.load(path, weights_only=True)['state_dict']) == {
        'backbone.' + k for k in backbone
    } | {'head.conv_head.0.weight', 'head.fc.weight', 'head.fc.bias'} | {
        f'head.conv_head.1.0.{n}'
        for n in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
    }

    model = _classifier(attn_pool=False)
    load_checkpoint(model, path, map_location='cpu', strict=True)
    for key, value in backbone.items():
        assert torch.equal(model.backbone.state_dict()[key], value), key

    # The official head, written out with the file's tensors: 1x1 conv, BN (eval), GELU,
    # global average pool, linear.
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feature = model.backbone(x)[-1]
        y = F.conv2d(feature, head['conv_head.0.weight'])
        y = F.batch_norm(
            y,
            head['conv_head.1.0.running_mean'],
            head['conv_head.1.0.running_var'],
            head['conv_head.1.0.weight'],
            head['conv_head.1.0.bias'],
            eps=1e-5,
        )
        expected = F.linear(F.gelu(y).mean((2, 3)), head['head.weight'], head['head.bias'])
        torch.testing.assert_close(model(x), expected)


def test_convert_attn_pool_head(tmp_path):
    backbone = random_state_dict(official_backbone_shapes(**TINY_ARCH), seed=3)
    head = random_state_dict(official_attn_pool_head_shapes(128, NUM_CLASSES), seed=4)
    path = _convert(tmp_path, {**backbone, **head})
    model = _classifier(attn_pool=True)
    load_checkpoint(model, path, map_location='cpu', strict=True)

    # Official H/G head computed by hand: pixel-shuffled stage 4 + stage 3, mean-token
    # query attending over all tokens (16 heads), LN, linear.
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        stage3, stage4 = model.backbone(x)
        y = F.pixel_shuffle(
            F.conv2d(stage4, head['dcnv3_head_x4.0.weight'], head['dcnv3_head_x4.0.bias']), 2
        )
        y = y + F.conv2d(stage3, head['dcnv3_head_x3.weight'], head['dcnv3_head_x3.bias'])
        tokens = y.flatten(2).transpose(1, 2)  # (N, L, 1024)

        def ln(t, name):
            return F.layer_norm(
                t, (t.shape[-1],), head[f'{name}.weight'], head[f'{name}.bias'], eps=1e-6
            )

        p = 'clip_projector'
        q = F.linear(
            ln(tokens.mean(1, keepdim=True), f'{p}.norm1_q.0'),
            head[f'{p}.cross_dcn.q.weight'],
            head[f'{p}.cross_dcn.q_bias'],
        )
        k = F.linear(
            ln(tokens, f'{p}.norm1_k.0'),
            head[f'{p}.cross_dcn.k.weight'],
            head[f'{p}.cross_dcn.k_bias'],
        )
        v = F.linear(
            ln(tokens, f'{p}.norm1_v.0'),
            head[f'{p}.cross_dcn.v.weight'],
            head[f'{p}.cross_dcn.v_bias'],
        )
        batch, heads = 2, 16
        q, k, v = (t.view(batch, t.shape[1], heads, 64).transpose(1, 2) for t in (q, k, v))
        attn = ((q * 64**-0.5) @ k.transpose(-2, -1)).softmax(-1)
        pooled = (attn @ v).transpose(1, 2).reshape(batch, 1024)
        pooled = F.linear(
            pooled, head[f'{p}.cross_dcn.proj.weight'], head[f'{p}.cross_dcn.proj.bias']
        )
        expected = F.linear(ln(pooled, 'fc_norm.0'), head['head.weight'], head['head.bias'])
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-4)


def test_convert_rejects_foreign_keys(tmp_path):
    official = random_state_dict(official_backbone_shapes(**TINY_ARCH))
    official['classifier.weight'] = torch.zeros(3, 3)
    with pytest.raises(KeyError, match='classifier.weight'):
        _convert(tmp_path, official)
