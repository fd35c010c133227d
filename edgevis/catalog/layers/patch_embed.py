"""Non-overlapping patches -> tokens with the official names (``proj``, ``norm``).

DeiT uses it without a norm (``norm`` is an Identity: no parameters, so the
checkpoint keys stay ``patch_embed.proj.*``); Swin with a LayerNorm.
"""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbed(nn.Module):
    def __init__(self, img_size: tuple[int, int], patch_size: int, in_chans: int, embed_dim: int,
                 norm: bool = False) -> None:
        super().__init__()
        h, w = img_size
        if h % patch_size or w % patch_size:
            raise ValueError(f"input size {h}x{w} is not a multiple of the patch size {patch_size}")
        self.grid_size = (h // patch_size, w // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.embed_dim = embed_dim
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm: nn.Module = nn.LayerNorm(embed_dim) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # static token count: no Shape ops enter the exported graph
        return self.norm(self.proj(x).reshape(-1, self.embed_dim, self.num_patches).transpose(1, 2))  # B, N, D
