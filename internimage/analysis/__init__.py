"""Model analysis: FLOPs as InternImage publishes them (dense layers + DCNv3 core)."""

from .flops import DCNV3_MACS_PER_SAMPLE, count_flops, dcnv3_core_flops

__all__ = ['DCNV3_MACS_PER_SAMPLE', 'count_flops', 'dcnv3_core_flops']
