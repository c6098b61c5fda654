"""Weights that make an export check meaningful (tests and the benchmark).

A freshly initialised InternImage hides DCNv3 mapping bugs: the offset and mask projections
start at zero (every point samples its grid position with equal weight), the
centre-feature-scale gate at zero and layer scales at 1e-5 (the DCNv3 branch barely
contributes). :func:`randomize_for_export_check` draws non-trivial values for all of them:
it is :func:`ops_dcnv3.testing.randomise_dcn_sampling`, which the GPU checks use too.
"""

from ops_dcnv3.testing import randomise_dcn_sampling

__all__ = ['randomize_for_export_check']

randomize_for_export_check = randomise_dcn_sampling
