"""PyTorch reference modules for the parity fixtures of make_fixtures.py, written from the upstream
implementations and independent of vlmc: LAVIS's EVA ViT-g and open_flamingo's Perceiver Resampler
and gated cross-attention, which no installed library provides (hf_fixtures.py uses the open_flamingo
loops too), plus copies of transformers' BERT and BLIP-2 Q-Former kept for seed_healthcare, whose
torchvision ResNet cannot run beside transformers here, and of the CLIP vision tower for
bench/peers.py (its peers export from Debian's torch, which has no transformers). Each class reproduces its upstream
counterpart's module tree (hence its state-dict keys) and its inference-time forward: dropout,
caches, head masks and output flags are left out.

All modules work in whatever dtype they are cast to; the fixtures run them in float64.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def split_heads(x, heads):
    b, t, w = x.shape
    return x.view(b, t, heads, w // heads).transpose(1, 2)


def merge_heads(x):
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


# ---- BERT (transformers.models.bert.modeling_bert) ------------------------------------------------


class BertEmbeddings(nn.Module):
    def __init__(self, vocab, width, positions, type_vocab, eps):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, width)
        self.position_embeddings = nn.Embedding(positions, width)
        self.token_type_embeddings = nn.Embedding(type_vocab, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, input_ids, token_type_ids=None):
        t = input_ids.shape[1]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        position_ids = torch.arange(t)[None]
        e = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) + self.position_embeddings(position_ids)
        return self.LayerNorm(e)


class BertSelfAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)

    def forward(self, h, attention_mask=None):
        q, k, v = (split_heads(f(h), self.heads) for f in (self.query, self.key, self.value))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if attention_mask is not None:
            scores = scores + attention_mask
        return merge_heads(scores.softmax(-1) @ v)


class BertSelfOutput(nn.Module):
    def __init__(self, width, eps):
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, h, input_tensor):
        return self.LayerNorm(self.dense(h) + input_tensor)


class BertAttention(nn.Module):
    def __init__(self, width, heads, eps):
        super().__init__()
        self.self = BertSelfAttention(width, heads)
        self.output = BertSelfOutput(width, eps)

    def forward(self, h, attention_mask=None):
        return self.output(self.self(h, attention_mask), h)


class BertIntermediate(nn.Module):
    def __init__(self, width, ffn):
        super().__init__()
        self.dense = nn.Linear(width, ffn)

    def forward(self, h):
        return F.gelu(self.dense(h))


class BertOutput(nn.Module):
    def __init__(self, width, ffn, eps):
        super().__init__()
        self.dense = nn.Linear(ffn, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, h, input_tensor):
        return self.LayerNorm(self.dense(h) + input_tensor)


class BertLayer(nn.Module):
    def __init__(self, width, heads, ffn, eps):
        super().__init__()
        self.attention = BertAttention(width, heads, eps)
        self.intermediate = BertIntermediate(width, ffn)
        self.output = BertOutput(width, ffn, eps)

    def forward(self, h, attention_mask=None):
        a = self.attention(h, attention_mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, width, depth, heads, ffn, eps):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(width, heads, ffn, eps) for _ in range(depth))

    def forward(self, h, attention_mask=None):
        for layer in self.layer:
            h = layer(h, attention_mask)
        return h


class BertPooler(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.dense = nn.Linear(width, width)

    def forward(self, h):
        return torch.tanh(self.dense(h[:, 0]))


class BertModel(nn.Module):
    """HF BertModel; forward returns (last_hidden_state, pooler_output). `attention_mask` is the
    extended additive mask [B, 1, 1 or T, T]."""

    def __init__(self, vocab, width, depth, heads, ffn, positions=512, type_vocab=2, eps=1e-12):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, width, positions, type_vocab, eps)
        self.encoder = BertEncoder(width, depth, heads, ffn, eps)
        self.pooler = BertPooler(width)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        h = self.encoder(self.embeddings(input_ids, token_type_ids), attention_mask)
        return h, self.pooler(h)


# ---- CLIP (transformers.models.clip.modeling_clip) ------------------------------------------------


# ---- GPT-2 (transformers.models.gpt2.modeling_gpt2) -----------------------------------------------


# ---- OPT (transformers.models.opt.modeling_opt) ---------------------------------------------------


# ---- LLaMA (transformers.models.llama.modeling_llama) ---------------------------------------------


# ---- T5 (transformers.models.t5.modeling_t5) ------------------------------------------------------


# ---- BLIP-2 Q-Former (transformers.models.blip_2.modeling_blip_2) --------------------------------


class Blip2QFormerMultiHeadAttention(nn.Module):
    def __init__(self, width, heads, kv_width):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(kv_width, width)
        self.value = nn.Linear(kv_width, width)

    def forward(self, h, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None):
        if encoder_hidden_states is not None:
            kv, attention_mask = encoder_hidden_states, encoder_attention_mask
        else:
            kv = h
        q = split_heads(self.query(h), self.heads)
        k = split_heads(self.key(kv), self.heads)
        v = split_heads(self.value(kv), self.heads)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if attention_mask is not None:
            scores = scores + attention_mask
        return merge_heads(scores.softmax(-1) @ v)


class Blip2QFormerSelfOutput(nn.Module):
    def __init__(self, width, eps):
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, h, input_tensor):
        return self.LayerNorm(self.dense(h) + input_tensor)


class Blip2QFormerAttention(nn.Module):
    def __init__(self, width, heads, kv_width, eps):
        super().__init__()
        self.attention = Blip2QFormerMultiHeadAttention(width, heads, kv_width)
        self.output = Blip2QFormerSelfOutput(width, eps)

    def forward(self, h, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None):
        return self.output(self.attention(h, attention_mask, encoder_hidden_states, encoder_attention_mask), h)


# HF's Q-Former copies these two from BERT ("Copied from transformers.models.bert…").
Blip2QFormerIntermediate = BertIntermediate
Blip2QFormerOutput = BertOutput


class Blip2QFormerLayer(nn.Module):
    def __init__(self, width, heads, ffn, kv_width, layer_idx, cross_attention_frequency, text_input, eps):
        super().__init__()
        self.attention = Blip2QFormerAttention(width, heads, width, eps)
        self.has_cross_attention = layer_idx % cross_attention_frequency == 0
        if self.has_cross_attention:
            self.crossattention = Blip2QFormerAttention(width, heads, kv_width, eps)
        if text_input:
            self.intermediate = Blip2QFormerIntermediate(width, ffn)
            self.output = Blip2QFormerOutput(width, ffn, eps)
        self.intermediate_query = Blip2QFormerIntermediate(width, ffn)
        self.output_query = Blip2QFormerOutput(width, ffn, eps)

    def forward(self, h, attention_mask, encoder_hidden_states, encoder_attention_mask, query_length):
        attention_output = self.attention(h, attention_mask)
        if query_length > 0:
            query_attention_output = attention_output[:, :query_length]
            if self.has_cross_attention:
                query_attention_output = self.crossattention(query_attention_output, attention_mask, encoder_hidden_states, encoder_attention_mask)
            layer_output = self.output_query(self.intermediate_query(query_attention_output), query_attention_output)
            if attention_output.shape[1] > query_length:
                text = attention_output[:, query_length:]
                layer_output = torch.cat([layer_output, self.output(self.intermediate(text), text)], dim=1)
        else:
            layer_output = self.output(self.intermediate(attention_output), attention_output)
        return layer_output


class Blip2QFormerEncoder(nn.Module):
    def __init__(self, width, depth, heads, ffn, kv_width, cross_attention_frequency, text_input, eps):
        super().__init__()
        self.layer = nn.ModuleList(
            Blip2QFormerLayer(width, heads, ffn, kv_width, i, cross_attention_frequency, text_input, eps) for i in range(depth)
        )

    def forward(self, h, attention_mask, encoder_hidden_states, encoder_attention_mask, query_length):
        for layer in self.layer:
            h = layer(h, attention_mask, encoder_hidden_states, encoder_attention_mask, query_length)
        return h


class Blip2QFormerModel(nn.Module):
    """HF Blip2QFormerModel. `embeds` are the query embeddings, optionally followed by text
    embeddings (word + position, as LAVIS's BertEmbeddings: the LayerNorm over the joint sequence is
    this model's `layernorm`); `query_length` says how many leading tokens are queries."""

    def __init__(self, width, depth, heads, ffn, kv_width, cross_attention_frequency=2, text_input=False, eps=1e-12):
        super().__init__()
        self.layernorm = nn.LayerNorm(width, eps=eps)
        self.encoder = Blip2QFormerEncoder(width, depth, heads, ffn, kv_width, cross_attention_frequency, text_input, eps)

    def forward(self, embeds, query_length, attention_mask=None, encoder_hidden_states=None):
        encoder_attention_mask = None
        if encoder_hidden_states is not None:
            # HF: an all-ones encoder mask, inverted to an additive one of zeros.
            encoder_attention_mask = torch.zeros(1, 1, 1, encoder_hidden_states.shape[1], dtype=embeds.dtype)
        return self.encoder(self.layernorm(embeds), attention_mask, encoder_hidden_states, encoder_attention_mask, query_length)


# ---- EVA ViT-g (LAVIS lavis/models/eva_vit.py) ----------------------------------------------------


class EvaPatchEmbed(nn.Module):
    def __init__(self, patch, width, channels=3):
        super().__init__()
        self.proj = nn.Conv2d(channels, width, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class EvaAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.qkv = nn.Linear(width, width * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.proj = nn.Linear(width, width)
        self.init_rules = {"q_bias": ("normal", 0.0, 0.1), "v_bias": ("normal", 0.0, 0.1)}

    def forward(self, x):
        b, n, c = x.shape
        qkv_bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, qkv_bias).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, -1))


class EvaMlp(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class EvaBlock(nn.Module):
    def __init__(self, width, heads, hidden, eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = EvaAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = EvaMlp(width, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class EvaVisionTransformer(nn.Module):
    """LAVIS eva_vit VisionTransformer as create_eva_vit_g builds it (no final norm, no head);
    forward returns the tokens after `layers` blocks (all by default)."""

    def __init__(self, image, patch, width, depth, heads, hidden, eps=1e-6):
        super().__init__()
        self.patch_embed = EvaPatchEmbed(patch, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, width))
        self.blocks = nn.ModuleList(EvaBlock(width, heads, hidden, eps) for _ in range(depth))

    def forward(self, x, layers=None):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for blk in self.blocks[: len(self.blocks) if layers is None else layers]:
            x = blk(x)
        return x


# ---- open_flamingo (open_flamingo/src/helpers.py, flamingo_lm.py) ---------------------------------


def FeedForward(dim, mult=4):
    inner = int(dim * mult)
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, inner, bias=False), nn.GELU(), nn.Linear(inner, dim, bias=False))


class PerceiverAttention(nn.Module):
    def __init__(self, dim, dim_head=64, heads=8):
        super().__init__()
        self.scale = dim_head**-0.5
        self.heads = heads
        inner = dim_head * heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x, latents):
        """x [b, T, n1, D], latents [b, T, n2, D] (open_flamingo's layout)."""
        x = self.norm_media(x)
        latents = self.norm_latents(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat((x, latents), dim=-2)).chunk(2, dim=-1)

        def heads(t):  # b T n (h d) -> b h T n d
            b, tt, n, hd = t.shape
            return t.view(b, tt, n, self.heads, hd // self.heads).permute(0, 3, 1, 2, 4)

        q, k, v = heads(q) * self.scale, heads(k), heads(v)
        sim = q @ k.transpose(-1, -2)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        out = sim.softmax(dim=-1) @ v  # b h T n d
        b, h, tt, n, d = out.shape
        return self.to_out(out.permute(0, 2, 3, 1, 4).reshape(b, tt, n, h * d))


class PerceiverResampler(nn.Module):
    def __init__(self, dim, depth=6, dim_head=64, heads=8, num_latents=64, ff_mult=4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head, heads), FeedForward(dim, ff_mult)]) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.init_rules = {"latents": ("normal", 0.0, 1.0)}

    def forward(self, x):
        """x [b, T, F, v, D] → [b, T, num_latents, D] (no frame or media-time embeddings)."""
        b, tt, fr, v, d = x.shape
        x = x.reshape(b, tt, fr * v, d)
        latents = self.latents.expand(b, tt, *self.latents.shape)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm(latents)


class MaskedCrossAttention(nn.Module):
    def __init__(self, dim, dim_visual, dim_head=64, heads=8):
        super().__init__()
        self.scale = dim_head**-0.5
        self.heads = heads
        inner = dim_head * heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim_visual, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x, media, media_locations):
        """x [B, T_txt, D], media [B, T_img, n, D_img], media_locations bool [B, T_txt];
        only_attend_immediate_media=True (open_flamingo's default)."""
        _, t_img, n = media.shape[:3]
        q = self.to_q(self.norm(x))
        media = media.reshape(media.shape[0], t_img * n, media.shape[-1])
        k, v = self.to_kv(media).chunk(2, dim=-1)
        q, k, v = split_heads(q, self.heads) * self.scale, split_heads(k, self.heads), split_heads(v, self.heads)
        sim = q @ k.transpose(-1, -2)
        text_time = media_locations.long().cumsum(dim=-1)
        media_time = torch.arange(t_img) + 1
        allowed = text_time[:, None, :, None] == media_time.repeat_interleave(n)[None, None, None, :]
        sim = sim.masked_fill(~allowed, -torch.finfo(sim.dtype).max)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)
        attn = attn.masked_fill((text_time == 0)[:, None, :, None], 0.0)
        return self.to_out(merge_heads(attn @ v))


class GatedCrossAttentionBlock(nn.Module):
    def __init__(self, dim, dim_visual, dim_head=64, heads=8, ff_mult=4):
        super().__init__()
        self.attn = MaskedCrossAttention(dim, dim_visual, dim_head, heads)
        self.attn_gate = nn.Parameter(torch.tensor([0.0]))
        self.ff = FeedForward(dim, ff_mult)
        self.ff_gate = nn.Parameter(torch.tensor([0.0]))
        # Non-zero gates, so that both branches count.
        self.init_rules = {"attn_gate": ("normal", 0.0, 1.0), "ff_gate": ("normal", 0.0, 1.0)}

    def forward(self, x, media, media_locations):
        x = self.attn(x, media, media_locations) * self.attn_gate.tanh() + x
        return self.ff(x) * self.ff_gate.tanh() + x


# ---- HF CLIP vision tower (kept for bench/peers.py, whose peers export from Debian's torch 1.13, where transformers is absent) ----


class CLIPVisionEmbeddings(nn.Module):
    def __init__(self, image, patch, width, channels=3):
        super().__init__()
        self.num_positions = (image // patch) ** 2 + 1
        self.class_embedding = nn.Parameter(torch.randn(width))
        self.patch_embedding = nn.Conv2d(channels, width, patch, stride=patch, bias=False)
        self.position_embedding = nn.Embedding(self.num_positions, width)

    def forward(self, pixel_values):
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(pixel_values.shape[0], 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding(torch.arange(self.num_positions)[None])


class CLIPAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.q_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, h, attention_mask=None, causal_attention_mask=None):
        q = split_heads(self.q_proj(h) * self.scale, self.heads)
        k = split_heads(self.k_proj(h), self.heads)
        v = split_heads(self.v_proj(h), self.heads)
        w = q @ k.transpose(-1, -2)
        if causal_attention_mask is not None:
            w = w + causal_attention_mask
        if attention_mask is not None:
            w = w + attention_mask
        return self.out_proj(merge_heads(w.softmax(-1) @ v))


class CLIPMLP(nn.Module):
    def __init__(self, width, mlp, act=quick_gelu):
        super().__init__()
        self.act = act
        self.fc1 = nn.Linear(width, mlp)
        self.fc2 = nn.Linear(mlp, width)

    def forward(self, h):
        return self.fc2(self.act(self.fc1(h)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, width, heads, mlp, eps):
        super().__init__()
        self.self_attn = CLIPAttention(width, heads)
        self.layer_norm1 = nn.LayerNorm(width, eps=eps)
        self.mlp = CLIPMLP(width, mlp)
        self.layer_norm2 = nn.LayerNorm(width, eps=eps)

    def forward(self, h, attention_mask=None, causal_attention_mask=None):
        h = h + self.self_attn(self.layer_norm1(h), attention_mask, causal_attention_mask)
        return h + self.mlp(self.layer_norm2(h))


class CLIPEncoder(nn.Module):
    def __init__(self, width, depth, heads, mlp, eps):
        super().__init__()
        self.layers = nn.ModuleList(CLIPEncoderLayer(width, heads, mlp, eps) for _ in range(depth))

    def forward(self, h, attention_mask=None, causal_attention_mask=None):
        """Returns HF's hidden_states tuple: the input, then each layer's output."""
        states = [h]
        for layer in self.layers:
            h = layer(h, attention_mask, causal_attention_mask)
            states.append(h)
        return states


class CLIPVisionTransformer(nn.Module):
    """HF CLIPVisionTransformer; forward returns (last_hidden_state, pooler_output, hidden_states)."""

    def __init__(self, image, patch, width, depth, heads, mlp, eps=1e-5, channels=3):
        super().__init__()
        self.embeddings = CLIPVisionEmbeddings(image, patch, width, channels)
        self.pre_layrnorm = nn.LayerNorm(width, eps=eps)
        self.encoder = CLIPEncoder(width, depth, heads, mlp, eps)
        self.post_layernorm = nn.LayerNorm(width, eps=eps)

    def forward(self, pixel_values):
        states = self.encoder(self.pre_layrnorm(self.embeddings(pixel_values)))
        last = states[-1]
        return last, self.post_layernorm(last[:, 0]), states
