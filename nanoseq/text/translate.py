"""Translate with a trained :class:`~nanoseq.text.seq2seq.Seq2Seq`: the model's own preprocessing
and vocabularies, greedy decoding and beam search in length-sorted batches (both from
:mod:`nanoseq.text.generate`), BLEU/chrF against references, and attention maps."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from keras import ops

from nanoseq.errors import InputError
from nanoseq.io import atomic_write, write_metrics
from nanoseq.metrics import translation_scores
from nanoseq.runtime import compiled, side_by_side
from nanoseq.text.data import detokenize, length_buckets, pad, preprocess
from nanoseq.text.generate import allowed_ids, allowed_log_probs, beam_search_batch, greedy_batch
from nanoseq.text.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocabulary


class Translator:
    """Sentences in, sentences out (tokens joined by spaces, after the model's preprocessing).

    :meth:`step` is the :mod:`nanoseq.text.generate` step function. Its states are the
    decoder states followed by the encoder memory, keys and source mask, all with the batch
    first, so that beam search reorders the memory with the hypotheses.
    """

    def __init__(self, model):
        self.model = model
        self.source_vocab = Vocabulary.from_config(model.source_vocabulary)
        self.target_vocab = Vocabulary.from_config(model.target_vocabulary)
        self.encode = compiled(model.encode)
        self.banned = [PAD_ID, UNK_ID, BOS_ID]
        self.allowed = allowed_ids(model.target_vocab_size, self.banned)
        self.next_log_probs = compiled(self._next_log_probs)

    @property
    def tokenises(self) -> bool:
        """Whether the model's preprocessing tokenises its text."""
        return bool(self.model.preprocessing.get("tokenize"))

    def prepare(self, sentence: str) -> str:
        return preprocess(sentence, **self.model.preprocessing)

    def scores(self, hypotheses: list[str], prepared_references: list[str]) -> dict:
        """BLEU and chrF of translations against references in the model's preprocessing
        (:meth:`prepare`); a tokenising model's text is tokenised on purpose."""
        return translation_scores(hypotheses, prepared_references, tokenised=self.tokenises)

    def source_ids(self, sentence: str) -> np.ndarray:
        """Source token ids ending in ``<eos>``, as in training."""
        return self.source_vocab.encode(self.prepare(sentence), eos=True)

    def _next_log_probs(self, tokens, memory, keys, mask, *states):
        """The next token's log probabilities (the banned tokens impossible) and the decoder's
        new states: on the backend, where it is many times faster than on the host."""
        logits, *finals = self.model.next_token(tokens, memory, keys, mask, *states)
        return [allowed_log_probs(logits, self.allowed), *finals]

    def step(self, tokens, states):
        *decoder_states, memory, keys, mask = states
        log_probs, *finals = self.next_log_probs(
            np.asarray(tokens, dtype=np.int32), memory, keys, mask, *decoder_states
        )
        finals = [ops.convert_to_numpy(s) for s in finals]
        return ops.convert_to_numpy(log_probs), finals + [memory, keys, mask]

    def start(self, sources: list[np.ndarray]) -> tuple[np.ndarray, list]:
        """First-token log probabilities and the step states for a batch of sources."""
        encoded = [ops.convert_to_numpy(s) for s in self.encode(pad(sources))]
        return self.step(np.full(len(sources), BOS_ID), encoded)

    def greedy(self, sources: list[np.ndarray], max_length: int | None = None) -> list[list[int]]:
        """Target ids (ending in ``<eos>`` unless cut at the length limit) for one batch."""
        length = max_length or limit(max(len(s) for s in sources))
        log_probs, states = self.start(sources)
        return greedy_batch(self.step, states, log_probs, length, EOS_ID)

    def beams(
        self,
        sources: list[np.ndarray],
        width: int,
        length_penalty: float = 1.0,
        max_length: int | None = None,
    ) -> list[list[int]]:
        """Beam search for a batch of sources, searched together."""
        log_probs, states = self.start(sources)
        lengths = [max_length or limit(len(source)) for source in sources]
        return beam_search_batch(
            self.step, states, log_probs, lengths, width, length_penalty, EOS_ID
        )

    def translate(
        self,
        sentences: list[str],
        beam_width: int = 1,
        length_penalty: float = 1.0,
        max_length: int | None = None,
        batch_size: int = 64,
        progress=None,
    ) -> list[str]:
        """Translations in input order, found in batches of similar length, as many batches at
        once as :func:`side_by_side` gives (threads); width 1 is greedy."""
        sources = [self.source_ids(s) for s in sentences]
        outputs: list[list[int]] = [[] for _ in sources]

        def decode(batch: list[int]) -> list[list[int]]:
            rows = [sources[i] for i in batch]
            if beam_width <= 1:
                return self.greedy(rows, max_length)
            return self.beams(rows, beam_width, length_penalty, max_length)

        batches = length_buckets([len(s) for s in sources], batch_size)
        streams = side_by_side(len(sources), batch_size)
        with ThreadPoolExecutor(streams, thread_name_prefix="model") as pool:
            for batch, found in zip(batches, pool.map(decode, batches), strict=True):
                for index, ids in zip(batch, found, strict=True):
                    outputs[index] = ids
                if progress:
                    progress.update(len(batch))
        return [self.target_vocab.decode(ids) for ids in outputs]

    def attention(self, sentence: str, translation: str) -> tuple[list[str], list[str], np.ndarray]:
        """Source tokens, target tokens and the weights ``(target, source)`` of a translation."""
        source = self.source_ids(sentence)
        target = self.target_vocab.encode(translation, eos=True)
        _, weights = self.model(
            (source[None], np.r_[BOS_ID, target[:-1]][None].astype(np.int32)),
            return_attention=True,
        )
        if weights is None:
            raise ValueError("this model has no attention (attention='none')")
        words = [self.source_vocab.symbols[i] for i in source]
        translated = [self.target_vocab.symbols[i] for i in target]
        return words, translated, ops.convert_to_numpy(weights)[0]


def load_translator(model: str) -> Translator:
    """A :class:`Translator` for a ``.keras`` file; a model of another family is refused."""
    from nanoseq.text.seq2seq import Seq2Seq

    return Translator(Seq2Seq.from_preset(model))


def write_lines(path: str | Path, lines: list[str]) -> None:
    with atomic_write(path) as handle:
        handle.write("".join(f"{line}\n" for line in lines))


def limit(source_length: int) -> int:
    """Default maximum translation length for a source of ``source_length`` tokens."""
    return 2 * source_length + 10


def translate_file(
    model: str,
    lines: list[str],
    output: str | Path | None,
    beam_width: int = 1,
    length_penalty: float = 1.0,
    max_length: int | None = None,
    batch_size: int = 64,
    progress=None,
) -> tuple[list[str], dict]:
    """``nanoseq seq2seq translate``: translations (written to ``output`` if given, with
    ``<output>.metrics.json``) and the run's figures."""
    translator = load_translator(model)
    start = time.perf_counter()
    translations = translator.translate(
        lines, beam_width, length_penalty, max_length, batch_size, progress
    )
    seconds = time.perf_counter() - start
    metrics = {
        "model": str(model),
        "sentences": len(lines),
        "beam_width": beam_width,
        "seconds": round(seconds, 3),
        "sentences_per_s": round(len(lines) / max(seconds, 1e-9), 2),
    }
    if output is not None:
        write_lines(output, translations)
        write_metrics(f"{output}.metrics.json", metrics)
    return translations, metrics


def evaluate_translation(
    model: str,
    sources: list[str],
    references: list[str],
    translations_path: str | Path | None = None,
    beam_width: int = 1,
    length_penalty: float = 1.0,
    max_length: int | None = None,
    batch_size: int = 64,
    attention_map: str | Path | None = None,
    sentence: int = 0,
    progress=None,
) -> dict:
    """``nanoseq seq2seq evaluate``: translate ``sources`` and score them against
    ``references`` preprocessed by the model's own rule (so tokenised, lower-cased models are
    scored on tokenised, lower-cased text); a tokenising model's translations are also scored
    detokenised against the references as given (``detokenised``: sacrebleu's defaults, as
    WMT papers report). ``attention_map``: a PNG of the attention weights of
    the ``sentence``-th (0-based) translation."""
    translator = load_translator(model)
    if attention_map is not None:
        if translator.model.attention == "none":
            raise InputError("no attention map: the model was trained with attention 'none'", model)
        if not 0 <= sentence < len(sources):
            raise InputError(f"no sentence {sentence + 1}: there are {len(sources)}")
    start = time.perf_counter()
    hypotheses = translator.translate(
        sources, beam_width, length_penalty, max_length, batch_size, progress
    )
    seconds = time.perf_counter() - start
    if translations_path is not None:
        write_lines(translations_path, hypotheses)
    if attention_map is not None:
        from nanoseq.text.attention_map import plot_attention

        tokens = translator.attention(sources[sentence], hypotheses[sentence])
        plot_attention(*tokens, attention_map, f"sentence {sentence + 1}: {sources[sentence]}")
    found = {
        "model": str(model),
        "beam_width": beam_width,
        "length_penalty": length_penalty,
        "preprocessing": translator.model.preprocessing,
        **translator.scores(hypotheses, [translator.prepare(r) for r in references]),
        "seconds": round(seconds, 3),
    }
    if translator.tokenises:  # as WMT papers score: raw references
        found["detokenised"] = translation_scores([detokenize(h) for h in hypotheses], references)
    return found
