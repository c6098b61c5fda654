# SegFormer head + InternImage-XL on Cityscapes from the Mapillary model (the L recipe
# with the XL backbone). Official: segformer_internimage_xl_512x1024_160k_mapillary2cityscapes.
# load_from: segformer_internimage_xl_512x1024_80k_mapillary.pth converted as in the L config.
# Target (official, single scale): mIoU 85.41.
_base_ = './internimage-l_segformer_8xb2-160k_mapillary2cityscapes-512x1024.py'

load_from = 'checkpoints/segformer_internimage_xl_512x1024_80k_mapillary.pth'
model = dict(backbone=dict(arch='xl'), decode_head=dict(in_channels=[192, 384, 768, 1536]))
