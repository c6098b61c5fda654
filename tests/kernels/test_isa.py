"""The CPU kernel's baseline (non-AVX2) loops, which an AVX2 machine never picks by itself.

The kernel follows ATen's CPU capability, so a subprocess with ATEN_CPU_CAPABILITY=default
runs the baseline build of the loops; it is checked there against ``dcnv3_reference``.
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.needs_extension

_CHECK = textwrap.dedent("""
    import torch
    from ops_dcnv3 import dcnv3, dcnv3_reference

    assert torch.backends.cpu.get_cpu_capability() == 'DEFAULT'
    gen = torch.Generator().manual_seed(0)
    # group widths 16 and 32 have their own compiled loops; 11 takes the generic one
    for group, cg in [(2, 16), (1, 32), (3, 11)]:
        x = torch.randn(2, 6, 7, group * cg, dtype=torch.float64, generator=gen)
        offset = 2 * torch.rand(2, 6, 7, group * 9 * 2, dtype=torch.float64, generator=gen) - 1
        mask = torch.rand(2, 6, 7, group * 9, dtype=torch.float64, generator=gen)
        results = []
        for op in (dcnv3, dcnv3_reference):
            inputs = [t.clone().requires_grad_() for t in (x, offset, mask)]
            out = op(*inputs, group=group)
            out.backward(torch.ones_like(out))
            results.append([out.detach()] + [t.grad for t in inputs])
        for name, got, want in zip(('output', 'input', 'offset', 'mask'), *results):
            err = (got - want).abs().max().item()
            assert err < 1e-10, f'cg={cg} {name}: max error {err}'
    print('baseline loops ok')
""")


def test_baseline_isa_loops_match_reference(repo_root):
    env = dict(os.environ, ATEN_CPU_CAPABILITY='default')
    result = subprocess.run(
        [sys.executable, '-c', _CHECK],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'baseline loops ok' in result.stdout
