"""Score a language model on a text: cross-entropy over the whole text with the recurrent state
carried from window to window (the model reads the text once, start to end)."""

from __future__ import annotations

import keras
import numpy as np

from nanoseq.errors import InputError
from nanoseq.metrics import text_scores
from nanoseq.runtime import compiled_for
from nanoseq.text.data import encode_corpus
from nanoseq.text.lm import LanguageModel
from nanoseq.text.vocab import Vocabulary


def stream_nats(
    model: LanguageModel, stream: np.ndarray, rows: int = 1, steps: int = 100, context: int = 0
):
    """Summed cross-entropy (nats) of every next token of ``stream`` and how many were scored.

    The stream is cut into ``rows`` contiguous parts read in parallel, state carried throughout
    (``rows`` 1 reads the whole text in order). Every part but the first starts by reading the
    ``context`` tokens before it, unscored, so that it is not scored from a cold state."""
    rows = max(1, min(rows, (len(stream) - 1) // steps or 1))
    length = (len(stream) - 1) // rows
    context = min(context, length) if rows > 1 else 0
    index = (np.arange(rows) * length - context)[:, None] + np.arange(context + length)
    inputs, targets = stream[np.maximum(index, 0)], stream[index[:, context:] + 1]
    states, total = model.zero_states(rows), 0.0
    forward = compiled_for(model, _with_states)
    if context:  # the first part has nothing before it: it starts from zero states after all
        _, states = forward(inputs[:, :context], states)
        states = [np.concatenate([np.zeros_like(s[:1]), s[1:]]) for s in map(np.asarray, states)]
    inputs = inputs[:, context:]
    for start in range(0, length, steps):
        x, y = inputs[:, start : start + steps], targets[:, start : start + steps]
        logits, states = forward(x, states)
        log_probs = keras.ops.log_softmax(logits, axis=-1)
        picked = np.take_along_axis(keras.ops.convert_to_numpy(log_probs), y[..., None], -1)
        total -= float(picked.sum())
    return total, rows * length


def _with_states(model, x, states):
    """The model's (tokens, states) -> (logits, states)."""
    return model(x, states, return_states=True)


def evaluate_text(model: str, text_file: str) -> dict:
    """``nanoseq lm evaluate``: nats per token, perplexity (and bits per char) of a text.

    Word models count ``<eos>`` at line ends as a token, as the PTB literature does."""
    net = LanguageModel.from_preset(model)
    vocab = Vocabulary.from_config(net.vocabulary)
    stream = encode_corpus([text_file], vocab)
    if len(stream) < 2:
        raise InputError(f"too short to score: {len(stream)} token(s)", text_file)
    nats, tokens = stream_nats(net, stream)
    return {
        "model": str(model),
        "text": str(text_file),
        "level": vocab.level,
        **text_scores(nats, tokens, vocab.level),
    }
