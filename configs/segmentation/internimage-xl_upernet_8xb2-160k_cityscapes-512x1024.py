# UperNet + InternImage-XL (ImageNet-22K pre-trained) on Cityscapes, 512x1024 crops, 160k
# iterations (the L recipe with the XL backbone, 39 layers).
# Target (official, single scale): mIoU 83.62.
_base_ = './internimage-l_upernet_8xb2-160k_cityscapes-512x1024.py'

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_xl_22k_192to384.pth'
)

model = dict(
    backbone=dict(arch='xl', init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768),
)
