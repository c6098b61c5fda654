# Mask R-CNN + InternImage-B, 1x schedule. Drop path 0.4, 33 layers.
# Target (official): box AP 48.8, mask AP 44.0.
_base_ = './mask-rcnn_internimage-t_fpn_1x_coco.py'

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_b_1k_224.pth'
arch = 'b'
depths = [4, 4, 21, 4]
channels = 112

model = dict(
    backbone=dict(
        arch=arch, drop_path_rate=0.4, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    neck=dict(in_channels=[channels * 2**i for i in range(4)]),
)
optim_wrapper = dict(paramwise_cfg=dict(num_layers=sum(depths), depths=depths))
