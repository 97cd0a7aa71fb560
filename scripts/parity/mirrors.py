"""The references no installable library provides (open_flamingo, flamingo-pytorch, LAVIS and
MobileVLM are not in the offline wheel store): open_flamingo's Perceiver Resampler and gated
cross-attention, used by make_fixtures.py (`perceiver`), hf_fixtures.py (`hf_flamingo`) and
scripts/generate/flamingo_reference.py; MobileVLM's LDPBlock (make_fixtures.py `mobilevlm_ldp`).

Upstream: github.com/mlfoundations/open_flamingo, open_flamingo/src/helpers.py as released in
OpenFlamingo v2, commit 5c9077977c19af221bbe73d3696befe10d7e1294 (its last change on main; "based
on lucidrains/flamingo-pytorch").
The classes below follow that file line by line: the same modules in the same order (hence the
same state-dict keys: `layers.{i}.0.*`, `layers.{i}.1.{0,1,3}.*`, `attn.*`, `attn_gate`, `ff.*`,
`ff_gate`), the same arguments and defaults, the same statements in the same order. The only
changes are spelling: einops' `rearrange` / `repeat` / `rearrange_many` and `torch.einsum` are
written as the equivalent view / permute / expand / matmul (each upstream pattern is quoted beside
its replacement), since einops_exts is not installable here either.

MobileVLM: github.com/Meituan-AutoML/MobileVLM, mobilevlm/model/vision_projector.py at commit
eb0039aa4be3e9b49fbba3672adfe0bb59c056f2 (its last change on main; LDPBlock is as first published in
5d53a994984f827615eae334777552e7e851d896), LDPBlock verbatim: it only composes library classes
(torchvision's InvertedResidual, InvertedResidualConfig and SqueezeExcitation, timm's LayerNormAct2d),
which are imported here, not copied.

All modules work in whatever dtype they are cast to; the fixtures run them in float64.
"""

import math
from functools import partial

import torch
from common import import_torchvision
from torch import nn

import_torchvision()
from timm.layers.norm_act import LayerNormAct2d  # noqa: E402
from torchvision.models.mobilenetv3 import InvertedResidual, InvertedResidualConfig  # noqa: E402
from torchvision.ops.misc import SqueezeExcitation as SElayer  # noqa: E402


def exists(val):
    return val is not None


def FeedForward(dim, mult=4):
    inner_dim = int(dim * mult)
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner_dim, bias=False),
        nn.GELU(),
        nn.Linear(inner_dim, dim, bias=False),
    )


def _split_heads(t, h):
    """rearrange(t, "... n (h d) -> ... h n d", h=h)"""
    *lead, n, hd = t.shape
    return t.reshape(*lead, n, h, hd // h).transpose(-3, -2)


def _merge_heads(t):
    """rearrange(t, "... h n d -> ... n (h d)")"""
    *lead, h, n, d = t.shape
    return t.transpose(-3, -2).reshape(*lead, n, h * d)


class PerceiverAttention(nn.Module):
    def __init__(self, *, dim, dim_head=64, heads=8):
        super().__init__()
        self.scale = dim_head**-0.5
        self.heads = heads
        inner_dim = dim_head * heads

        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)

        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)

    def forward(self, x, latents):
        """x: image features (b, T, n1, D); latents: (b, T, n2, D)."""
        x = self.norm_media(x)
        latents = self.norm_latents(latents)

        h = self.heads

        q = self.to_q(latents)
        kv_input = torch.cat((x, latents), dim=-2)
        k, v = self.to_kv(kv_input).chunk(2, dim=-1)
        # rearrange_many((q, k, v), "b t n (h d) -> b h t n d", h=h)
        q, k, v = (_split_heads(t, h).transpose(1, 2) for t in (q, k, v))
        q = q * self.scale

        # attention
        sim = q @ k.transpose(-1, -2)  # einsum("... i d, ... j d  -> ... i j", q, k)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)

        out = attn @ v  # einsum("... i j, ... j d -> ... i d", attn, v)
        out = _merge_heads(out.transpose(1, 2))  # rearrange(out, "b h t n d -> b t n (h d)", h=h)
        return self.to_out(out)


class PerceiverResampler(nn.Module):
    def __init__(
        self,
        *,
        dim,
        depth=6,
        dim_head=64,
        heads=8,
        num_latents=64,
        max_num_media=None,
        max_num_frames=None,
        ff_mult=4,
    ):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.frame_embs = nn.Parameter(torch.randn(max_num_frames, dim)) if exists(max_num_frames) else None
        self.media_time_embs = nn.Parameter(torch.randn(max_num_media, 1, dim)) if exists(max_num_media) else None

        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(
                nn.ModuleList(
                    [
                        PerceiverAttention(dim=dim, dim_head=dim_head, heads=heads),
                        FeedForward(dim=dim, mult=ff_mult),
                    ]
                )
            )

        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        """x: image features (b, T, F, v, D) → (b, T, n, D), n = num_latents."""
        b, T, F, v = x.shape[:4]

        # frame and media time embeddings
        if exists(self.frame_embs):
            # repeat(self.frame_embs[:F], "F d -> b T F v d", b=b, T=T, v=v)
            frame_embs = self.frame_embs[:F][None, None, :, None].expand(b, T, F, v, -1)
            x = x + frame_embs
        x = x.reshape(b, T, F * v, x.shape[-1])  # rearrange(x, "b T F v d -> b T (F v) d")
        if exists(self.media_time_embs):
            x = x + self.media_time_embs[:T]

        # blocks
        latents = self.latents.expand(b, T, *self.latents.shape)  # repeat(self.latents, "n d -> b T n d", b=b, T=T)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm(latents)


# gated cross attention
class MaskedCrossAttention(nn.Module):
    def __init__(
        self,
        *,
        dim,
        dim_visual,
        dim_head=64,
        heads=8,
        only_attend_immediate_media=True,
    ):
        super().__init__()
        self.scale = dim_head**-0.5
        self.heads = heads
        inner_dim = dim_head * heads

        self.norm = nn.LayerNorm(dim)

        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim_visual, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)

        # whether for text to only attend to immediate preceding image, or all previous images
        self.only_attend_immediate_media = only_attend_immediate_media

    def forward(self, x, media, media_locations=None, use_cached_media=False):
        """x: text features (B, T_txt, D_txt); media: image features (B, T_img, n, D_img);
        media_locations: bool (B, T_txt), True at the media tokens of x; use_cached_media: treat all
        of x as after the last media in media_locations (T_txt need not equal its length)."""

        if not use_cached_media:
            assert (
                media_locations.shape[1] == x.shape[1]
            ), f"media_location.shape is {media_locations.shape} but x.shape is {x.shape}"

        T_txt = x.shape[1]
        _, T_img, n = media.shape[:3]
        h = self.heads

        x = self.norm(x)

        q = self.to_q(x)
        media = media.reshape(media.shape[0], T_img * n, media.shape[-1])  # rearrange(media, "b t n d -> b (t n) d")

        k, v = self.to_kv(media).chunk(2, dim=-1)
        q, k, v = (_split_heads(t, h) for t in (q, k, v))  # rearrange_many((q, k, v), "b n (h d) -> b h n d", h=h)

        q = q * self.scale

        sim = q @ k.transpose(-1, -2)  # einsum("... i d, ... j d -> ... i j", q, k)

        if exists(media_locations):
            media_time = torch.arange(T_img, device=x.device) + 1

            if use_cached_media:
                # text time is set to the last cached media location
                # repeat(torch.count_nonzero(media_locations, dim=1), "b -> b i", i=T_txt)
                text_time = torch.count_nonzero(media_locations, dim=1)[:, None].expand(-1, T_txt)
            else:
                # at each boolean of True, increment the time counter (relative to media time)
                text_time = media_locations.cumsum(dim=-1)

            # text time must equal media time if only attending to most immediate image
            # otherwise, as long as text time is greater than media time (if attending to all previous images / media)
            mask_op = torch.eq if self.only_attend_immediate_media else torch.ge

            text_to_media_mask = mask_op(
                text_time[:, None, :, None],  # rearrange(text_time, "b i -> b 1 i 1")
                media_time.repeat_interleave(n)[None, None, None, :],  # repeat(media_time, "j -> 1 1 1 (j n)", n=n)
            )
            sim = sim.masked_fill(~text_to_media_mask, -torch.finfo(sim.dtype).max)

        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)

        if exists(media_locations) and self.only_attend_immediate_media:
            # any text without a preceding media needs to have attention zeroed out
            text_without_media_mask = text_time == 0
            text_without_media_mask = text_without_media_mask[:, None, :, None]  # rearrange(…, "b i -> b 1 i 1")
            attn = attn.masked_fill(text_without_media_mask, 0.0)

        out = attn @ v  # einsum("... i j, ... j d -> ... i d", attn, v)
        out = _merge_heads(out)  # rearrange(out, "b h n d -> b n (h d)")
        return self.to_out(out)


class GatedCrossAttentionBlock(nn.Module):
    def __init__(
        self,
        *,
        dim,
        dim_visual,
        dim_head=64,
        heads=8,
        ff_mult=4,
        only_attend_immediate_media=True,
    ):
        super().__init__()
        self.attn = MaskedCrossAttention(
            dim=dim,
            dim_visual=dim_visual,
            dim_head=dim_head,
            heads=heads,
            only_attend_immediate_media=only_attend_immediate_media,
        )
        self.attn_gate = nn.Parameter(torch.tensor([0.0]))

        self.ff = FeedForward(dim, mult=ff_mult)
        self.ff_gate = nn.Parameter(torch.tensor([0.0]))

    def forward(
        self,
        x,
        media,
        media_locations=None,
        use_cached_media=False,
    ):
        x = (
            self.attn(
                x,
                media,
                media_locations=media_locations,
                use_cached_media=use_cached_media,
            )
            * self.attn_gate.tanh()
            + x
        )
        x = self.ff(x) * self.ff_gate.tanh() + x

        return x


# ---- MobileVLM (mobilevlm/model/vision_projector.py) -----------------------------------------------


class LDPBlock(nn.Module):
    # Lightweight Downsample Projector Block

    def __init__(self, config=None):
        super().__init__()

        inc, ouc = config.mm_hidden_size, config.hidden_size
        layer_norm = partial(LayerNormAct2d, act_layer=None)
        se_layer = partial(SElayer, scale_activation=nn.Hardsigmoid)
        self.mlp = nn.Sequential(nn.Identity(), nn.Linear(inc, ouc), nn.GELU(), nn.Linear(ouc, ouc))
        self.mb_block = nn.Sequential(
            nn.Identity(),
            InvertedResidual(InvertedResidualConfig(ouc, 3, ouc, ouc, True, "HS", 1, 1, 1), layer_norm, se_layer),
            InvertedResidual(InvertedResidualConfig(ouc, 3, ouc, ouc, True, "HS", 2, 1, 1), layer_norm, se_layer),
        )

    def forward(self, x):
        b, num_tokens, c = x.shape
        h = int(math.sqrt(num_tokens))
        x = self.mlp(x)
        x = x.permute(0, 2, 1).reshape(b, -1, h, h)
        x = self.mb_block(x)
        x = x.flatten(2).permute(0, 2, 1)
        return x
