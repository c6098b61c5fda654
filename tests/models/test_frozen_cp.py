"""frozen_stages freezes (eval mode, no grads); with_cp changes memory, not results."""

import pytest
import torch

from internimage import InternImage
from tests.models.official_keys import TINY_ARCH, use_reference_op


@pytest.mark.parametrize('frozen_stages', [0, 2, 4])
def test_frozen_stages(frozen_stages, tiny_internimage):
    model = tiny_internimage(frozen_stages=frozen_stages)
    model.train()
    frozen = [model.patch_embed, *model.levels[:frozen_stages]]
    trainable = list(model.levels[frozen_stages:])
    for module in frozen:
        assert all(not m.training for m in module.modules())
        assert all(not p.requires_grad for p in module.parameters())
    for module in trainable:
        assert all(m.training for m in module.modules())
        assert all(p.requires_grad for p in module.parameters())

    loss = sum(out.sum() for out in model(torch.randn(1, 3, 32, 32)))
    if not trainable:  # everything frozen: nothing to differentiate
        assert not loss.requires_grad
        return
    loss.backward()
    assert all(p.grad is None for m in frozen for p in m.parameters())
    for module in trainable:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_no_frozen_stages_by_default(tiny_internimage):
    model = tiny_internimage().train()
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize('arch_extra', [{}, dict(layer_scale=0.5, post_norm=True)])
def test_with_cp_same_outputs_and_grads(arch_extra):
    arch = dict(TINY_ARCH, **arch_extra)
    kwargs = dict(arch=arch, drop_path_rate=0.2, use_reference=use_reference_op())
    plain = InternImage(**kwargs).train()
    checkpointed = InternImage(with_cp=True, **kwargs).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)

    results = []
    for model in (plain, checkpointed):
        torch.manual_seed(123)  # same drop-path draws; checkpoint replays the RNG state
        inputs = x.clone().requires_grad_()
        outs = model(inputs)
        sum((out * torch.linspace(0, 1, out.numel()).view_as(out)).sum() for out in outs).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results.append((outs, inputs.grad, grads))
    (outs_a, gx_a, grads_a), (outs_b, gx_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(gx_a, gx_b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)
