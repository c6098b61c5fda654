"""Every ISA build of the CPU kernel's loops against ``dcnv3_reference``.

The kernel compiles its loops for the baseline ISA, for AVX2+FMA, for AVX-512 (16-float
channel vectors) and for AVX-512 with the BF16 dot product (the bfloat16 forward), and
follows ATen's CPU capability and OPS_DCNV3_CPU_ISA when it picks one. A machine runs only
its best build by itself, so each build is checked in a subprocess with
ATEN_CPU_CAPABILITY set (``default``, ``avx2``), with OPS_DCNV3_CPU_ISA=avx512 (AVX-512
without the BF16 instructions), or with neither (``native``: the best the machine has), and
the build the kernels report (``ops_dcnv3._C.cpu_isa()``) is checked against the CPU's flags.
The checks cover the group widths with their own loops (16, 32), a width
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
    import ops_dcnv3._C
    from ops_dcnv3 import dcnv3, dcnv3_reference

    expected = sys.argv[1]
    if expected in ('default', 'avx2'):
        assert torch.backends.cpu.get_cpu_capability() == expected.upper(), (
            torch.backends.cpu.get_cpu_capability())
    print('isa', ops_dcnv3._C.cpu_isa())
    gen = torch.Generator().manual_seed(0)
    bounds = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 3e-2}
    checked = 0
    # 6x7 = 42 pixels per image: tiles of 8 pixels straddle images.
    for group, cg, batch, threads in [(2, 16, 2, 1), (1, 32, 2, 1), (3, 11, 2, 1),
                                      (2, 8, 2, 1), (4, 16, 1, 2), (2, 16, 1, 5), (2, 16, 3, 2)]:
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


def cpu_flags() -> set:
    """The CPU's feature flags (Linux), empty where /proc/cpuinfo is missing."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def best_isa(flags: set) -> str:
    """The build the kernels should pick by themselves, from the CPU flags and ATen's choice."""
    import torch

    aten = torch.backends.cpu.get_cpu_capability()
    if aten == 'AVX512' and {'avx512f', 'avx512vl', 'avx512bw', 'avx512dq'} <= flags:
        return 'avx512_bf16' if 'avx512_bf16' in flags else 'avx512'
    if aten != 'DEFAULT' and {'avx2', 'fma'} <= flags:
        return 'avx2'
    return 'default'


@pytest.mark.parametrize('capability', ['default', 'avx2', 'avx512', 'native'])
def test_isa_loops_match_reference(repo_root, capability):
    flags = cpu_flags()
    if not flags:
        pytest.skip('needs /proc/cpuinfo to know which builds the CPU runs')
    native = best_isa(flags)
    order = ['default', 'avx2', 'avx512', 'avx512_bf16']
    if capability != 'native' and order.index(capability) > order.index(native):
        pytest.skip(f'the CPU runs at most the {native} build')
    env = dict(os.environ)
    env.pop('ATEN_CPU_CAPABILITY', None)
    env.pop('OPS_DCNV3_CPU_ISA', None)
    if capability in ('default', 'avx2'):
        env['ATEN_CPU_CAPABILITY'] = capability
    elif capability == 'avx512':
        env['OPS_DCNV3_CPU_ISA'] = capability
    result = subprocess.run(
        [sys.executable, '-c', _CHECK, capability],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'isa {native if capability == "native" else capability}\n' in result.stdout
    assert 'loops ok: 42' in result.stdout


def test_bad_isa_cap_is_refused(repo_root):
    env = dict(os.environ, OPS_DCNV3_CPU_ISA='avx1024')
    result = subprocess.run(
        [sys.executable, '-c', 'import ops_dcnv3._C as C; C.cpu_isa()'],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo_root,
    )
    assert result.returncode != 0
    assert 'OPS_DCNV3_CPU_ISA must be one of' in result.stderr
