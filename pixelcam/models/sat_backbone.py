"""SAT's encoder (Wu et al., ICCV 2023): DeiT with a spatial-aware token whose attention gates the others.

A learnable token (with its own position embedding) is appended after the patch tokens. In every block its
query's attention logits over all keys, averaged over heads and passed through a sigmoid, give a spatial
mask M (foreground probability per token); from block `gate_from` on (9 of DeiT-Tiny's 12: the last three)
every token's softmax attention is multiplied by M over the keys, so attention flows to what the token calls
foreground. The localization map is M over the patch tokens averaged over the last `map_blocks` blocks.
The forward returns the patch tokens on their grid, F (B, d, h, w), and keeps that map in `self.maps`
(B, h, w), read by the SAT method right after (same batch).
"""

from __future__ import annotations

import torch
from torch import nn

from pixelcam.adapters.timm import vit_tokens
from pixelcam.models.timm_backbone import Backbone


def sat_attention(attn: nn.Module, x: torch.Tensor, gate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One timm `Attention` with SAT's mask: (output (B, N, C), mask (B, N) over the keys). The spatial
    token is the last of the N tokens."""
    b, n, c = x.shape
    qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    logits = (q * attn.scale) @ k.transpose(-2, -1)  # (B, heads, N, N)
    mask = torch.sigmoid(logits[:, :, -1, :].mean(1))  # the spatial token's query, mean over heads
    a = logits.softmax(-1)
    if gate:
        a = a * mask[:, None, None, :]
    a = attn.attn_drop(a)
    y = (a @ v).transpose(1, 2).reshape(b, n, getattr(attn, "attn_dim", c))
    return attn.proj_drop(attn.proj(attn.norm(y))), mask


class SATBackbone(Backbone):
    """DeiT-Tiny (timm, any input size) with the spatial-aware token; `maps`: the last forward's map."""

    def __init__(
        self,
        name: str = "deit_tiny_patch16_224",
        pretrained: bool = False,
        gate_from: int = 9,
        map_blocks: int = 3,
        **kwargs: object,
    ) -> None:
        super().__init__(name, pretrained, is_vit=True, **kwargs)
        d = self.num_features
        self.loc_token = nn.Parameter(torch.zeros(1, 1, d))
        self.loc_embed = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.trunc_normal_(self.loc_token, std=0.02)
        nn.init.trunc_normal_(self.loc_embed, std=0.02)
        depth = len(self.model.blocks)
        if not 0 <= gate_from < depth or not 1 <= map_blocks <= depth:
            raise ValueError(f"gate_from must be in [0, {depth}) and map_blocks in [1, {depth}]")
        self.gate_from, self.map_blocks = gate_from, map_blocks
        self.maps: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        b = x.shape[0]
        t = vit_tokens(m, x)
        t = torch.cat([t, (self.loc_token + self.loc_embed).expand(b, -1, -1)], 1)
        masks = []
        for i, blk in enumerate(m.blocks):
            y, mask = sat_attention(blk.attn, blk.norm1(t), gate=i >= self.gate_from)
            t = t + blk.drop_path1(blk.ls1(y))
            t = t + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(t))))
            masks.append(mask)
        t = m.norm(t)
        p = m.num_prefix_tokens
        h, w = m.patch_embed.dynamic_feat_size(x.shape[-2:])
        self.maps = torch.stack(masks[-self.map_blocks :]).mean(0)[:, p:-1].reshape(b, h, w)
        return t[:, p:-1].transpose(1, 2).reshape(b, -1, h, w)
