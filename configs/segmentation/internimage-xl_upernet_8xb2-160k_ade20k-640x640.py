# UperNet + InternImage-XL (ImageNet-22K pre-trained) on ADE20K, 640x640
# crops, 160k iterations (the L recipe with the XL backbone, 39 layers).
# Target (official, single scale): mIoU 55.0.
_base_ = './internimage-l_upernet_8xb2-160k_ade20k-640x640.py'

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_xl_22k_192to384.pth'
)

model = dict(
    backbone=dict(arch='xl', init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768),
)
