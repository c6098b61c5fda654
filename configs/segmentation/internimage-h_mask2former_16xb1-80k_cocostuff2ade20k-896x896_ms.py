# Multi-scale + flip testing of ./internimage-h_mask2former_16xb1-80k_cocostuff2ade20k-896x896.py
# (official mask2former_internimage_h_896_80k_cocostuff2ade20k_ms): the test size (short
# side 896, long side at most 3584) times 768/896, 832/896, 1, 960/896 and 1024/896, each
# rounded to a multiple of 32, with and without a horizontal flip; the logits are averaged.
# Run: python tools/test.py CONFIG CHECKPOINT --tta  (mmseg's SegTTAModel). Training is
# the single-scale config's.
# Target (official, multi-scale): mIoU 62.9.
_base_ = './internimage-h_mask2former_16xb1-80k_cocostuff2ade20k-896x896.py'

tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale=(3584 * size // 896, size), keep_ratio=True)
                for size in (768, 832, 896, 960, 1024)
            ],
            [dict(type='ResizeToMultiple', size_divisor=32)],
            [
                dict(type='RandomFlip', prob=0.0, direction='horizontal'),
                dict(type='RandomFlip', prob=1.0, direction='horizontal'),
            ],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ],
    ),
]
