# UperNet + InternImage-XL (ImageNet-22K pre-trained) on ADE20K, 640x640
# crops, 160k iterations (the L recipe with the XL backbone, 39 layers).
# Target (official, single scale): mIoU 55.0.
_base_ = './internimage-l_upernet_8xb2-160k_ade20k-640x640.py'

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_xl_22k_192to384.pth'
)
arch = 'xl'
depths = [5, 5, 24, 5]
channels = 192

model = dict(
    backbone=dict(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[channels * 2**i for i in range(4)]),
    auxiliary_head=dict(in_channels=channels * 4),
)
optim_wrapper = dict(paramwise_cfg=dict(num_layers=sum(depths), depths=depths))
