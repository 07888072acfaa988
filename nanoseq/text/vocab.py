"""Character and word vocabularies with ``<pad> <unk> <bos> <eos>`` at ids 0-3.

Text is cut into characters, whitespace-separated words, or subwords (words cut by byte-pair
merges learned with the vocabulary, :mod:`nanoseq.text.subwords`). Unknown symbols map to
``<unk>`` and never raise. A vocabulary is saved with the model that uses it (its
``get_config`` is plain JSON, the merges included).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import partial

import numpy as np

from nanoseq.errors import InputError
from nanoseq.text.subwords import Subwords

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
LEVELS = ("char", "word", "subword")


class Vocabulary:
    """Symbols by id; ``level`` says how text is cut: characters, whitespace-separated words,
    or those words cut into the symbols by byte-pair ``merges`` (required at that level)."""

    def __init__(
        self,
        symbols: Iterable[str],
        level: str = "char",
        merges: Iterable[tuple[str, str]] | None = None,
    ):
        if level not in LEVELS:
            raise InputError(f"vocabulary level must be one of {LEVELS}, got {level!r}")
        if (level == "subword") != (merges is not None):
            raise ValueError("a subword vocabulary needs its merges, and only it has them")
        self.level = level
        self.symbols = list(SPECIALS) + [s for s in symbols if s not in SPECIALS]
        self.ids = {symbol: i for i, symbol in enumerate(self.symbols)}
        self.subwords = None if merges is None else Subwords(merges, known=self.ids)

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        level: str = "char",
        min_count: int = 1,
        max_size: int | None = None,
        merges: int = 0,
    ) -> Vocabulary:
        """Count symbols over ``texts``; keep those seen ``min_count`` times, most frequent first
        (ties in first-seen order), at most ``max_size`` including the specials. The subword
        level first learns up to ``merges`` merges on the texts' words."""
        texts = list(texts)
        learned, cut = None, partial(tokenize, level=level)
        if level == "subword":
            subwords = Subwords.learn((w for text in texts for w in text.split()), merges)
            learned, cut = subwords.merges, subwords.split  # every piece they make, all known
        counts: Counter = Counter()
        for text in texts:
            counts.update(cut(text))
        kept = [s for s, n in counts.most_common() if n >= min_count and s not in SPECIALS]
        if max_size is not None:
            kept = kept[: max(0, max_size - len(SPECIALS))]
        return cls(kept, level, learned)

    def __len__(self) -> int:
        return len(self.symbols)

    def tokenize(self, text: str) -> list[str]:
        if self.subwords is not None:
            return self.subwords.split(text)
        return tokenize(text, self.level)

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> np.ndarray:
        ids = [self.ids.get(symbol, UNK_ID) for symbol in self.tokenize(text)]
        return np.array([BOS_ID] * bos + ids + [EOS_ID] * eos, dtype=np.int32)

    def decode(self, ids: Iterable[int], strip: bool = True) -> str:
        """Symbols joined back (words with spaces); ``strip`` drops pad/bos/eos."""
        drop = {PAD_ID, BOS_ID, EOS_ID} if strip else set()
        symbols = [self.symbols[i] for i in map(int, ids) if i not in drop]
        if self.subwords is not None:
            return self.subwords.join(symbols)
        return ("" if self.level == "char" else " ").join(symbols)

    def get_config(self) -> dict:
        config = {"symbols": self.symbols[len(SPECIALS) :], "level": self.level}
        if self.subwords is not None:
            config["merges"] = [list(pair) for pair in self.subwords.merges]
        return config

    @classmethod
    def from_config(cls, config: dict) -> Vocabulary:
        return cls(config["symbols"], config["level"], config.get("merges"))


def tokenize(text: str, level: str) -> list[str]:
    return list(text) if level == "char" else text.split()


def other_vocabularies(saved: list[dict], built: list[Vocabulary]) -> str:
    """Why a model with the ``saved`` vocabulary configs cannot go on training on data encoded
    by the ``built`` vocabularies (empty: they are the same)."""
    if saved == [vocab.get_config() for vocab in built]:
        return ""
    return (
        "its vocabularies are not this run's (resume with the data and vocabulary options it "
        "was trained with)"
    )
