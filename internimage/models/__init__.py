from .heads import AttentionPooling, InternImageAttnPoolClsHead, InternImageClsHead
from .internimage import InternImage, layer_id_of_param

__all__ = [
    'InternImage',
    'layer_id_of_param',
    'InternImageClsHead',
    'InternImageAttnPoolClsHead',
    'AttentionPooling',
]
