"""Every ISA build of the CPU kernel's loops against ``dcnv3_reference``.

The kernel compiles its loops for the baseline ISA, for AVX2+FMA and for AVX-512 (16-float
channel vectors), and follows ATen's CPU capability when it picks one. A machine runs only
its best build by itself, so each build is checked in a subprocess with
ATEN_CPU_CAPABILITY set (``default``, ``avx2``; ``native`` leaves it unset: AVX-512 where the
machine has it). The checks cover the group widths with their own loops (16, 32), a width
that takes the generic loop (11) and one that AVX-512 cannot hold in whole vectors (8);
float64, float32 and bfloat16; the fused mask softmax; and thread counts that split a batch
of one image into group blocks and pixel chunks.
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.needs_extension

_CHECK = textwrap.dedent("""
    import sys
    import torch
    from ops_dcnv3 import dcnv3, dcnv3_reference

    expected = sys.argv[1]
    if expected != 'native':
        assert torch.backends.cpu.get_cpu_capability() == expected.upper(), (
            torch.backends.cpu.get_cpu_capability())
    gen = torch.Generator().manual_seed(0)
    bounds = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 3e-2}
    checked = 0
    for group, cg, batch, threads in [(2, 16, 2, 1), (1, 32, 2, 1), (3, 11, 2, 1),
                                      (2, 8, 2, 1), (4, 16, 1, 2), (2, 16, 1, 5)]:
        torch.set_num_threads(threads)
        x = torch.randn(batch, 6, 7, group * cg, dtype=torch.float64, generator=gen)
        # Fractional parts in (0.2, 0.8), also once rounded to bfloat16: locations stay clear
        # of the grid lines where bilinear sampling has kinks (its gradient jumps there).
        shape = (batch, 6, 7, group * 9 * 2)
        offset = (torch.randint(-3, 3, shape, generator=gen)
                  + 0.2 + 0.6 * torch.rand(shape, dtype=torch.float64, generator=gen))
        logits = torch.randn(batch, 6, 7, group * 9, dtype=torch.float64, generator=gen)
        grad = torch.randn(batch, 6, 7, group * cg, dtype=torch.float64, generator=gen)
        for softmax in (False, True):
            mask = logits if softmax else logits.sigmoid()

            def run(op, dtype, **kwargs):
                inputs = [t.detach().to(dtype).requires_grad_() for t in (x, offset, mask)]
                out = op(*inputs, group=group, **kwargs)
                out.backward(grad.to(dtype))
                return [t.double() for t in [out.detach()] + [t.grad for t in inputs]]

            def reference(dtype):
                # From the inputs as rounded to dtype: rounding moves sampling locations,
                # which the location gradient is not continuous in.
                inputs = [t.to(dtype).double().detach().requires_grad_() for t in (x, offset, mask)]
                weights = mask_of(inputs[2])
                out = dcnv3_reference(inputs[0], inputs[1], weights, group=group)
                out.backward(grad)
                return [out.detach()] + [t.grad for t in inputs]

            def mask_of(m):
                if not softmax:
                    return m
                return torch.softmax(m.unflatten(-1, (group, 9)), -1).flatten(-2)

            for dtype, bound in bounds.items():
                want = reference(dtype)
                got = run(dcnv3, dtype, softmax_mask=softmax)
                for name, g, w in zip(('output', 'input', 'offset', 'mask'), got, want):
                    err = ((g - w).abs().max() / w.abs().max().clamp_min(1)).item()
                    assert err < bound, (
                        f'cg={cg} threads={threads} {dtype} softmax={softmax} {name}: {err}')
                checked += 1
    print(f'loops ok: {checked}')
""")


@pytest.mark.parametrize('capability', ['default', 'avx2', 'native'])
def test_isa_loops_match_reference(repo_root, capability):
    env = dict(os.environ)
    env.pop('ATEN_CPU_CAPABILITY', None)
    if capability != 'native':
        env['ATEN_CPU_CAPABILITY'] = capability
    result = subprocess.run(
        [sys.executable, '-c', _CHECK, capability],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'loops ok: 36' in result.stdout
