"""Our classification configs in mmpretrain's ``ModelHub`` (``configs/model-index.yml``).

mmpretrain's ``inference_model`` picks its inferencer from a model's model-index entry
(``Results: Task``), which only models built by name have; registering the index makes
``get_model('internimage-t_8xb128_in1k', pretrained=...)`` and ``inference_model`` work
with our configs. The index lives in the checkout's ``configs/``; without it (a package
installed without the configs) nothing is registered.
"""

import os.path as osp

from mmpretrain.apis import ModelHub

__all__ = ['MODEL_INDEX', 'register_model_index']

MODEL_INDEX = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'model-index.yml'
)


def register_model_index() -> bool:
    """Registers :data:`MODEL_INDEX` once; returns whether it is registered."""
    if not osp.isfile(MODEL_INDEX):
        return False
    if not ModelHub.has('internimage-t_8xb128_in1k'):
        ModelHub.register_model_index(MODEL_INDEX)
    return True
