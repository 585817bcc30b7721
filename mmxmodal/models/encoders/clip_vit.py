"""CLIP ViT image encoder (open_clip, local checkpoints only) with its projection into the shared space."""
from typing import Dict, Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS

from ..clip_utils import DEFAULT_TEMPLATES, load_local_clip, text_class_embeddings


@MODELS.register_module()
class CLIPViTEncoder(BaseModule):
    """Image tower of a CLIP ViT loaded from a local open_clip / OpenAI-CLIP checkpoint.

    The text tower and tokenizer are kept (outside the module tree, so they are neither trained, averaged by the
    EMA teacher nor saved) until :meth:`release_text_tower`; :meth:`class_text_embeddings` uses them.

    Args:
        model_name, pretrained, local_dir, openai_checkpoint, image_size: see
            :func:`mmxmodal.models.clip_utils.load_local_clip`.
        frozen: freeze the whole image tower.

    ``forward(img, mask=None)``:
        img: (B, 3, H, W) float RGB in [0, 1] (normalised here with CLIP's mean / std).
        mask: optional (B, L) bool over the L = (H/p)(W/p) patches; masked patch embeddings are replaced by a
            learnable mask token (SimMIM / MUST), the class token still sees the whole sequence.
        returns dict(feat=(B, D) projected class embedding (not normalised), tokens=(B, L, W) patch tokens after
            the final LayerNorm).
    """

    def __init__(self,
                 model_name: Optional[str] = None,
                 pretrained: Optional[str] = None,
                 local_dir: Optional[str] = None,
                 openai_checkpoint: Optional[str] = None,
                 image_size: Optional[int] = None,
                 frozen: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        clip, tokenizer, pre = load_local_clip(model_name, pretrained, local_dir, openai_checkpoint, image_size)
        visual = clip.visual
        if getattr(visual, 'attn_pool', None) is not None or getattr(visual, 'pool_type', 'tok') != 'tok':
            raise NotImplementedError('CLIPViTEncoder supports class-token ViTs (OpenAI / open_clip ViT-*)')
        self.visual = visual
        self.patch_size = int(visual.patch_size[0])
        self.grid_size = tuple(visual.grid_size)
        self.width = int(visual.conv1.out_channels)
        self.out_channels = int(visual.output_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.width))
        nn.init.normal_(self.mask_token, std=0.02)
        self.register_buffer('mean', torch.tensor(pre['mean']).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(pre['std']).view(1, 3, 1, 1), persistent=False)
        self._text = dict(clip=clip, tokenizer=tokenizer)  # plain dict: not a submodule
        if frozen:
            self.visual.requires_grad_(False)

    def init_weights(self) -> None:
        """Weights come from the CLIP checkpoint; only an explicit ``init_cfg`` (e.g. Pretrained) is applied."""
        if self.init_cfg:
            super().init_weights()

    @property
    def has_text_tower(self) -> bool:
        return self._text.get('clip') is not None

    def class_text_embeddings(self, class_names: Sequence[str],
                              templates: Sequence[str] = DEFAULT_TEMPLATES) -> Tensor:
        """(C, D) unit class embeddings from the text tower with prompt templates (deterministic)."""
        if not self.has_text_tower:
            raise RuntimeError('the text tower was released')
        return text_class_embeddings(self._text['clip'], self._text['tokenizer'], class_names, templates)

    def release_text_tower(self) -> None:
        """Drop the text tower (frees memory; the image tower is shared and kept)."""
        self._text = dict(clip=None, tokenizer=None)

    def forward(self, img: Tensor, mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        v = self.visual
        x = (img - self.mean) / self.std
        x = v.conv1(x.to(v.conv1.weight.dtype))  # (B, W, gh, gw)
        b = x.shape[0]
        x = x.flatten(2).transpose(1, 2)  # (B, L, W)
        if mask is not None:
            m = mask.to(x.dtype).unsqueeze(-1)
            x = x * (1 - m) + self.mask_token.to(x.dtype) * m
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(b, -1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        x = v.ln_pre(x)
        x = v.transformer(x)
        x = v.ln_post(x)
        feat = x[:, 0] @ v.proj if v.proj is not None else x[:, 0]
        return dict(feat=feat, tokens=x[:, 1:])
