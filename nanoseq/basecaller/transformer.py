"""A transformer encoder layer as ONT's v5 basecallers have it (bonito's
``TransformerEncoderLayer``): multi-head self-attention with rotary positions over a sliding
window, then a SwiGLU feed-forward; each followed by an RMS norm of its output plus the input
scaled by DeepNorm's ``alpha`` (post-norm)."""

from __future__ import annotations

import math

import keras
from keras import ops

EPS = 1e-5  # dorado's (bonito's newest: float32's machine epsilon, a negligible difference)


def rms_norm(x, weight):
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + EPS) * weight


def rotate_half(x):
    first, second = ops.split(x, 2, axis=-1)
    return ops.concatenate([-second, first], axis=-1)


@keras.saving.register_keras_serializable(package="nanoseq")
class TransformerEncoderLayer(keras.layers.Layer):
    """``(batch, steps, d_model)`` -> the same. Attention reaches ``attn_window = (before,
    after)`` steps (None: all); rotary positions over each head's whole width (base 10,000,
    its two halves rotated together); queries, keys and values without bias, the output
    projection with; the feed-forward ``fc2(silu(gate) * data)`` where ``fc1`` gives
    ``(data, gate)``, both without bias."""

    def __init__(
        self, d_model, nhead, dim_feedforward, deepnorm_alpha=1.0, attn_window=None, **kwargs
    ):
        super().__init__(**kwargs)
        if d_model % nhead:
            raise ValueError(f"d_model {d_model} is not a multiple of nhead {nhead}")
        self.d_model, self.nhead, self.dim_feedforward = d_model, nhead, dim_feedforward
        self.deepnorm_alpha = float(deepnorm_alpha)
        self.attn_window = None if attn_window is None else [int(w) for w in attn_window]
        self.head_dim = d_model // nhead
        dense = dict(dtype=self.dtype_policy)
        self.qkv = keras.layers.Dense(3 * d_model, use_bias=False, name="qkv", **dense)
        self.out = keras.layers.Dense(d_model, name="out", **dense)
        self.fc1 = keras.layers.Dense(2 * dim_feedforward, use_bias=False, name="fc1", **dense)
        self.fc2 = keras.layers.Dense(d_model, use_bias=False, name="fc2", **dense)

    def build(self, input_shape):
        self.qkv.build(input_shape)
        self.out.build(input_shape)
        self.fc1.build(input_shape)
        self.fc2.build((*input_shape[:-1], self.dim_feedforward))
        self.norm1 = self.add_weight((self.d_model,), initializer="ones", name="norm1")
        self.norm2 = self.add_weight((self.d_model,), initializer="ones", name="norm2")

    def call(self, x):
        shape = ops.shape(x)
        batch, steps = shape[0], shape[1]
        qkv = ops.reshape(self.qkv(x), (batch, steps, 3, self.nhead, self.head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (batch, steps, heads, head_dim)
        half = ops.arange(0, self.head_dim, 2, dtype="float32") / self.head_dim
        angles = ops.arange(steps, dtype="float32")[:, None] / (10000.0**half)[None, :]
        angles = ops.concatenate([angles, angles], axis=-1)[None, :, None, :]
        cos, sin = ops.cast(ops.cos(angles), x.dtype), ops.cast(ops.sin(angles), x.dtype)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        scores = ops.einsum("bthd,bshd->bhts", q, k) / math.sqrt(self.head_dim)
        if self.attn_window is not None:
            offset = ops.arange(steps)[None, :] - ops.arange(steps)[:, None]  # s - t
            near = (offset >= -self.attn_window[0]) & (offset <= self.attn_window[1])
            scores = ops.where(near[None, None], scores, ops.cast(-1e9, scores.dtype))
        weights = ops.softmax(scores, axis=-1)
        attended = ops.reshape(
            ops.einsum("bhts,bshd->bthd", weights, v), (batch, steps, self.d_model)
        )
        x = rms_norm(self.out(attended) + x * self.deepnorm_alpha, self.norm1)
        data, gate = ops.split(self.fc1(x), 2, axis=-1)
        y = self.fc2(ops.silu(gate) * data)
        return rms_norm(y + x * self.deepnorm_alpha, self.norm2)

    def get_config(self):
        return {
            **super().get_config(),
            "d_model": self.d_model,
            "nhead": self.nhead,
            "dim_feedforward": self.dim_feedforward,
            "deepnorm_alpha": self.deepnorm_alpha,
            "attn_window": self.attn_window,
        }
