# Mask2Former-H with the official ADE20K / COCO-Stuff head: 1024 channels (32 heads, FFN
# 4096) in the pixel decoder and the transformer decoder, 200 queries.
_base_ = './mask2former_internimage-h.py'

embed_dims = 1024
attention = dict(embed_dims=embed_dims, num_heads=32)
model = dict(
    decode_head=dict(
        feat_channels=embed_dims,
        out_channels=embed_dims,
        num_queries=200,
        pixel_decoder=dict(
            encoder=dict(
                layer_cfg=dict(
                    self_attn_cfg=attention,
                    ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4096),
                )
            ),
            positional_encoding=dict(num_feats=embed_dims // 2),
        ),
        positional_encoding=dict(num_feats=embed_dims // 2),
        transformer_decoder=dict(
            layer_cfg=dict(
                self_attn_cfg=attention,
                cross_attn_cfg=attention,
                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4096),
            )
        ),
    )
)
