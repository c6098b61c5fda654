from .cbnet import CBDINO, CBChannelMapper, CBDINOHead, CBInternImage
from .heads import AttentionPooling, InternImageAttnPoolClsHead, InternImageClsHead
from .internimage import FlashInternImage, InternImage, layer_id_of_param
from .model_index import register_model_index

__all__ = [
    'InternImage',
    'FlashInternImage',
    'layer_id_of_param',
    'InternImageClsHead',
    'InternImageAttnPoolClsHead',
    'AttentionPooling',
    'register_model_index',
    'CBInternImage',
    'CBChannelMapper',
    'CBDINOHead',
    'CBDINO',
]
