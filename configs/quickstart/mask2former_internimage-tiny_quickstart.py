# Quick start: Mask2Former (mmseg 1.x's Mask2FormerHead, the head of the Mask2Former-H
# configs) on the tiny InternImage and the synthetic shapes label maps (python
# tools/make_quickstart_data.py), trained from scratch on a CPU, then evaluated with
# mIoU. The H configs' head shrunk: 64 channels, 2 deformable encoder layers, 3
# masked-attention decoder layers, 16 queries, 1024 sampled points per mask.
_base_ = [
    '../_base_/models/mask2former_internimage-h.py',
    '../_base_/datasets/quickstart_seg.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/quickstart_seg.py',
]

custom_imports = dict(imports=['internimage', 'mmdet.models'], allow_failed_imports=False)

num_classes = 4  # background, circle, square, triangle
embed_dims = 64
attention = dict(embed_dims=embed_dims, num_heads=4)
ffn = dict(embed_dims=embed_dims, feedforward_channels=2 * embed_dims)
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(
        # Stage channels 32, 64, 128, 256; 16 channels per DCNv3 group everywhere.
        arch=dict(_delete_=True, channels=32, depths=[1, 1, 2, 1], groups=[2, 4, 8, 16]),
        drop_path_rate=0.0,
        init_cfg=None,  # from scratch
    ),
    decode_head=dict(
        in_channels=[32, 64, 128, 256],
        feat_channels=embed_dims,
        out_channels=embed_dims,
        num_classes=num_classes,
        num_queries=16,
        pixel_decoder=dict(
            encoder=dict(num_layers=2, layer_cfg=dict(self_attn_cfg=attention, ffn_cfg=ffn)),
            positional_encoding=dict(num_feats=embed_dims // 2),
        ),
        positional_encoding=dict(num_feats=embed_dims // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(self_attn_cfg=attention, cross_attn_cfg=attention, ffn_cfg=ffn),
        ),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=1024),
    ),
)
optim_wrapper = dict(optimizer=dict(lr=2e-4), clip_grad=dict(max_norm=0.1, norm_type=2))
log_processor = dict(by_epoch=False, window_size=20)
randomness = dict(seed=0)
