"""Score a language model on a text: cross-entropy over the whole text with the recurrent state
carried from window to window (the model reads the text once, start to end)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
from keras import ops

from nanoseq.errors import InputError
from nanoseq.metrics import text_scores
from nanoseq.runtime import compiled_for, side_by_side
from nanoseq.text.data import encode_corpus
from nanoseq.text.lm import LanguageModel
from nanoseq.text.rows_side_by_side import MIN_STREAM_ROWS
from nanoseq.text.vocab import Vocabulary


def stream_nats(
    model: LanguageModel,
    stream: np.ndarray,
    rows: int = 1,
    steps: int = 100,
    context: int = 0,
    streams: int | None = None,
):
    """Summed cross-entropy (nats) of every next token of ``stream`` and how many were scored.

    The stream is cut into ``rows`` contiguous parts read in parallel, state carried throughout
    (``rows`` 1 reads the whole text in order). Every part but the first starts by reading the
    ``context`` tokens before it, unscored, so that it is not scored from a cold state. The rows
    are shared among ``streams`` calls at once (threads; default :func:`side_by_side`'s, none of
    under :data:`MIN_STREAM_ROWS` rows), compiled with XLA."""
    rows = max(1, min(rows, (len(stream) - 1) // steps or 1))
    length = (len(stream) - 1) // rows
    context = min(context, length) if rows > 1 else 0
    index = (np.arange(rows) * length - context)[:, None] + np.arange(context + length)
    inputs, targets = stream[np.maximum(index, 0)], stream[index[:, context:] + 1]

    groups = np.array_split(np.arange(rows), streams or side_by_side(rows, MIN_STREAM_ROWS))
    # TensorFlow's XLA reads one row at a time at a quarter of its graphs' speed (0.13 s a call
    # of 100 characters against 0.033 s, and 0.011 s for two rows): one-row calls go without it
    one_row = min(map(len, groups)) == 1 and keras.backend.backend() == "tensorflow"
    forward = compiled_for(model, _nats_with_states, xla=not one_row)

    def nats(group: np.ndarray) -> float:
        """The summed nats of the rows in ``group``, read start to end."""
        states, total = model.zero_states(len(group)), 0.0
        if context:  # the first part has nothing before it: it starts from zero states after all
            _, states = forward(inputs[group, :context], inputs[group, :context], states)
            first = group == 0
            states = [np.where(first[:, None], 0.0, s) for s in map(np.asarray, states)]
        for start in range(context, context + length, steps):
            x = inputs[group, start : start + steps]
            y = targets[group, start - context : start - context + steps]
            summed, states = forward(x, y, states)
            total += float(summed)
        return total

    with ThreadPoolExecutor(len(groups), thread_name_prefix="model") as pool:
        return sum(pool.map(nats, groups)), rows * length


def _nats_with_states(model, x, y, states):
    """The summed cross-entropy of targets ``y`` after tokens ``x`` read from ``states``, and
    the states after them."""
    logits, states = model(x, states, return_states=True)
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    picked = ops.take_along_axis(log_probs, ops.expand_dims(y, -1), axis=-1)
    return -ops.sum(picked), states


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
