from .heads import AttentionPooling, InternImageAttnPoolClsHead, InternImageClsHead
from .internimage import FlashInternImage, InternImage, layer_id_of_param

__all__ = [
    'InternImage',
    'FlashInternImage',
    'layer_id_of_param',
    'InternImageClsHead',
    'InternImageAttnPoolClsHead',
    'AttentionPooling',
]
