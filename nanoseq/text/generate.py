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
    """The best of ``width`` hypotheses kept at every step.

    Each step ranks all extensions; those ending in ``eos_id`` among the best ``width`` finish,
    and the best ``width`` others live on. Finished hypotheses (or live ones at ``length``) are
    ranked by ``score / len ** length_penalty`` (0 = raw log probability, 1 = per-token
    average). The search ends when ``width`` hypotheses have finished, or (``length_penalty``
    0) as soon as the best finished one beats every live one.
    """
    beams = [([], 0.0)]
    first = log_probs[None, :]
    states = [np.asarray(s)[:1] for s in states]
    finished: list[tuple[list[int], float]] = []

    def ranked(hypothesis):
        tokens, score = hypothesis
        return score / max(1, len(tokens)) ** length_penalty

    for t in range(length):
        scores = first if t == 0 else None
        if scores is None:
            last = np.array([tokens[-1] for tokens, _ in beams])
            scores, states = step(last, states)
            states = [np.asarray(s) for s in states]
        total = np.array([score for _, score in beams])[:, None] + scores
        flat = np.argsort(-total, axis=None)[: 2 * width]
        keep, order = [], []
        for rank, index in enumerate(flat):
            row, token = divmod(int(index), total.shape[1])
            hypothesis = (beams[row][0] + [token], float(total[row, token]))
            if token == eos_id:
                if rank < width:  # only the best ``width`` may end (so width 1 is greedy)
                    finished.append(hypothesis)
            elif len(keep) < width:
                keep.append(hypothesis)
                order.append(row)
        beams, states = keep, [s[order] for s in states]
        if not beams or len(finished) >= width:  # fairseq's rule: width hypotheses finished
            return max(finished, key=ranked)[0]
        if length_penalty == 0 and finished:  # scores only fall: a finished best stays best
            if max(score for _, score in finished) >= max(score for _, score in beams):
                return max(finished, key=ranked)[0]
    return max(finished + beams, key=ranked)[0]


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
    log_probs, states = net.prime(ids if len(ids) else np.array([BOS_ID]))
    eos = EOS_ID if vocab.level == "word" else None
    banned = [PAD_ID, UNK_ID, BOS_ID] + ([] if eos is not None else [EOS_ID])
    step = without(net.step, banned)
    log_probs = without_ids(log_probs[None], banned)[0]
    if beam_width:
        tokens = beam_search(step, states, log_probs, length, beam_width, length_penalty, eos)
    else:
        tokens = sample(step, states, log_probs, length, temperature, top_k, top_p, seed, eos)
    joiner = "" if vocab.level == "char" or not prompt else " "
    return prompt + joiner + vocab.decode(tokens)


def without_ids(log_probs: np.ndarray, banned: list[int]) -> np.ndarray:
    """Log probabilities renormalised with ``banned`` tokens made impossible."""
    log_probs = np.array(log_probs, dtype=np.float64)
    log_probs[:, banned] = -np.inf
    return log_softmax(log_probs)


def without(step: Step, banned: list[int]) -> Step:
    """``step`` that never proposes the ``banned`` tokens (e.g. <pad>, <unk>)."""

    def masked(tokens, states):
        log_probs, states = step(tokens, states)
        return without_ids(log_probs, banned), states

    return masked
