"""Decoding shared by the language models and seq2seq: sampling (temperature, top-k, top-p),
greedy and beam search, over any ``step`` function.

``step(tokens, states) -> (log_probs, states)`` advances a batch of hypotheses by one token:
``tokens`` is ``(batch,)`` int, ``log_probs`` is ``(batch, vocab)``, ``states`` is a list of
arrays whose first axis is the batch (so beams can be reordered).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nanoseq.probability import log_softmax

Step = Callable[[np.ndarray, list], tuple[np.ndarray, list]]


def filter_logits(logits: np.ndarray, temperature: float, top_k=None, top_p=None) -> np.ndarray:
    """Log probabilities after temperature, then top-k, then nucleus (top-p) truncation."""
    scaled = log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    if top_k:
        kth = np.sort(scaled)[-min(top_k, len(scaled))]
        scaled = np.where(scaled >= kth, scaled, -np.inf)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-scaled)
        cumulative = np.cumsum(np.exp(scaled[order]))
        keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
        mask = np.full_like(scaled, -np.inf)
        mask[keep] = scaled[keep]
        scaled = mask
    return log_softmax(scaled)


def sample(
    step: Step,
    states: list,
    log_probs: np.ndarray,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    eos_id: int | None = None,
) -> list[int]:
    """Draw up to ``length`` tokens for one hypothesis; ``temperature`` 0 is greedy.

    ``log_probs`` (vocab,) is the distribution of the first token (after the prompt)."""
    rng = np.random.default_rng(seed)
    tokens: list[int] = []
    for _ in range(length):
        if temperature <= 0:
            token = int(np.argmax(log_probs))
        else:
            p = np.exp(filter_logits(log_probs, temperature, top_k, top_p))
            token = int(rng.choice(len(p), p=p / p.sum()))
        tokens.append(token)
        if token == eos_id:
            break
        out, states = step(np.array([token]), states)
        log_probs = out[0]
    return tokens


def greedy(step: Step, states: list, log_probs: np.ndarray, length: int, eos_id=None) -> list[int]:
    return greedy_batch(step, states, log_probs[None], length, eos_id)[0]


def greedy_batch(
    step: Step, states: list, log_probs: np.ndarray, length: int, eos_id: int | None = None
) -> list[list[int]]:
    """The most likely token at every step for a batch of hypotheses at once (``log_probs`` is
    ``(batch, vocab)``); a row stops at ``eos_id`` (kept), the batch when every row has."""
    rows = [[] for _ in range(len(log_probs))]
    done = np.zeros(len(log_probs), dtype=bool)
    for t in range(length):
        tokens = np.argmax(log_probs, axis=-1)
        for row in np.flatnonzero(~done):
            rows[row].append(int(tokens[row]))
        done |= tokens == eos_id
        if done.all() or t == length - 1:
            break
        log_probs, states = step(tokens, states)
    return rows


def beam_search(
    step: Step,
    states: list,
    log_probs: np.ndarray,
    length: int,
    width: int = 5,
    length_penalty: float = 0.0,
    eos_id: int | None = None,
) -> list[int]:
    """:func:`beam_search_batch` for one hypothesis (``log_probs`` is ``(vocab,)``)."""
    first = [np.asarray(s)[:1] for s in states]
    return beam_search_batch(step, first, log_probs[None], length, width, length_penalty, eos_id)[0]


def beam_search_batch(
    step: Step,
    states: list,
    log_probs: np.ndarray,
    length,
    width: int = 5,
    length_penalty: float = 0.0,
    eos_id: int | None = None,
) -> list[list[int]]:
    """The best of ``width`` hypotheses kept at every step, for a batch of rows at once
    (``log_probs`` is ``(batch, vocab)``; ``length`` one limit or one a row): each step
    advances the live hypotheses of every row still searching in one call of ``step``.

    Each step ranks a row's extensions; those ending in ``eos_id`` among the best ``width``
    finish, and the best ``width`` others live on. Finished hypotheses (or live ones at the
    length limit) are ranked by ``score / len ** length_penalty`` (0 = raw log probability,
    1 = per-token average). A row ends when ``width`` hypotheses have finished (fairseq's
    rule), or (``length_penalty`` 0) as soon as its best finished one beats every live one.
    """
    rows, vocab = log_probs.shape
    limits = np.broadcast_to(np.asarray(length), (rows,))
    found: list[list[int]] = [[] for _ in range(rows)]
    finished: list[list[tuple[list[int], float]]] = [[] for _ in range(rows)]
    active = np.arange(rows)  # rows still searching, as the step's batch holds them
    tokens = np.zeros((rows, width, 0), dtype=np.int64)  # live hypotheses
    scores = np.full((rows, width), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis at first: the others cannot be extended
    states = [np.repeat(np.asarray(s), width, axis=0) for s in states]
    step_log_probs = np.repeat(log_probs, width, axis=0)

    def ranked(hypothesis):
        ids, score = hypothesis
        return score / max(1, len(ids)) ** length_penalty

    for t in range(int(limits.max(initial=0))):
        if t:
            step_log_probs, states = step(tokens[:, :, -1].reshape(-1), states)
            states = [np.asarray(s) for s in states]
        n = len(active)
        total = scores[:, :, None] + np.asarray(step_log_probs).reshape(n, width, vocab)
        total = total.reshape(n, -1)
        best = _best(total, 2 * width)
        value = np.take_along_axis(total, best, 1)
        beam, token = np.divmod(best, vocab)
        ends = token == eos_id
        for r, rank in np.argwhere(ends[:, :width]):  # so width 1 is greedy
            ids = tokens[r, beam[r, rank]].tolist() + [eos_id]
            finished[active[r]].append((ids, float(value[r, rank])))
        live = np.argsort(ends, axis=1, kind="stable")[:, :width]  # at most width end
        beam, token, scores = (np.take_along_axis(a, live, 1) for a in (beam, token, value))
        here = np.arange(n)[:, None]
        tokens = np.concatenate([tokens[here, beam], token[..., None]], axis=2)
        order = (here * width + beam).reshape(-1)
        done = np.zeros(n, dtype=bool)
        for r, row in enumerate(active):
            ended = finished[row]
            if len(ended) >= width or (
                length_penalty == 0 and ended and max(s for _, s in ended) >= scores[r].max()
            ):  # scores only fall: a finished best stays best
                found[row], done[r] = max(ended, key=ranked)[0], True
            elif t + 1 >= limits[row]:
                alive = [
                    (ids, float(s)) for ids, s in zip(tokens[r].tolist(), scores[r], strict=True)
                ]
                found[row], done[r] = max(ended + alive, key=ranked)[0], True
        stay = ~done
        active, tokens, scores = active[stay], tokens[stay], scores[stay]
        states = [s[order[np.repeat(stay, width)]] for s in states]
        if not len(active):
            break
    return found


def _best(total: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` largest entries' indices, best first (ties: the lower index): the
    backend's top-k, 10x NumPy's partition here."""
    from keras import ops

    _, indices = ops.top_k(total, min(k, total.shape[1]))
    return ops.convert_to_numpy(indices)


def allowed_ids(vocab_size: int, banned) -> np.ndarray:
    """A mask of the ids a decoder may propose: all but ``banned``."""
    return ~np.isin(np.arange(vocab_size), banned)


def allowed_log_probs(logits, allowed):
    """Log probabilities of ``logits`` (batch, vocab) with only the ``allowed`` ids possible,
    computed on the backend (inside a decoder's compiled step)."""
    from keras import ops

    return ops.log_softmax(ops.where(allowed, logits, float("-inf")), axis=-1)


def generate_text(
    model: str,
    prompt: str = "",
    length: int = 300,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    beam_width: int | None = None,
    length_penalty: float = 0.0,
    seed: int | None = None,
) -> str:
    """The prompt and the language model's continuation of it (``nanoseq lm generate``)."""
    from nanoseq.text.lm import LanguageModel
    from nanoseq.text.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocabulary

    net = LanguageModel.from_preset(model)
    vocab = Vocabulary.from_config(net.vocabulary)
    ids = vocab.encode(prompt)
    eos = EOS_ID if vocab.level == "word" else None
    banned = [PAD_ID, UNK_ID, BOS_ID] + ([] if eos is not None else [EOS_ID])
    log_probs, states = net.prime(ids if len(ids) else np.array([BOS_ID]), banned)

    def step(tokens, states):
        return net.step(tokens, states, banned)

    if beam_width:
        tokens = beam_search(step, states, log_probs, length, beam_width, length_penalty, eos)
    else:
        tokens = sample(step, states, log_probs, length, temperature, top_k, top_p, seed, eos)
    joiner = "" if vocab.level == "char" or not prompt else " "
    return prompt + joiner + vocab.decode(tokens)
