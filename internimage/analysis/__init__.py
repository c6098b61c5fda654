"""Model analysis: FLOPs as InternImage publishes them (dense layers + DCNv3 / DCNv4 core)."""

from .flops import (
    DEFORMABLE_MACS_PER_SAMPLE,
    build_counted_model,
    count_flops,
    deformable_core_flops,
)

__all__ = [
    'DEFORMABLE_MACS_PER_SAMPLE',
    'build_counted_model',
    'count_flops',
    'deformable_core_flops',
]
