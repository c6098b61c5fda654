# InternImage-XL, ImageNet-22K pre-trained, fine-tuned on ImageNet-1K at 384
# (official internimage_xl_22kto1k_384: 88.0 top-1, 335M params). Recipe as for L.
_base_ = './internimage-l_8xb64_in1k-384px.py'

model = dict(backbone=dict(arch='xl', drop_path_rate=0.2), head=dict(in_channels=1536))
