"""Byte-pair encoding (Sennrich et al. 2016): words cut into the subword units that the most
frequent merges of adjacent symbols make, so that rare and unseen words (German compounds, names,
numbers) are spelt from known pieces instead of becoming ``<unk>``.

A word is cut into pieces; every piece but the last ends in ``@@`` (subword-nmt's convention), so
``"Hausboot"`` may become ``"Haus@@ boot"`` and :meth:`Subwords.join` undoes it exactly. Given the
``known`` pieces (a vocabulary's), a piece outside them is cut back into the two it was merged
from, until known or a single letter, as subword-nmt does with a vocabulary: so new words are
spelt from pieces a model was trained on, not from merges it never saw whole.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Container, Iterable
from itertools import pairwise

MARK = "@@"
_END = "</w>"  # the last symbol of a word carries it while merging, so word ends stay apart


class Subwords:
    """The learned merges, in order; :meth:`split` applies them to words, keeping to the
    ``known`` pieces if given."""

    def __init__(self, merges: Iterable[tuple[str, str]], known: Container[str] | None = None):
        self.merges = [tuple(pair) for pair in merges]
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.parts: dict[str, tuple[str, str]] = {}
        for pair in reversed(self.merges):  # the first merge that made a symbol wins
            self.parts[pair[0] + pair[1]] = pair
        self.known = known
        self._pieces: dict[str, list[str]] = {}

    @classmethod
    def learn(cls, words: Iterable[str], merges: int) -> Subwords:
        """Up to ``merges`` merges, each the most frequent adjacent pair over the words'
        occurrences (ties: the pair that sorts first); pair counts are kept up to date
        word by word, so learning costs what the merges touch, not the vocabulary each time."""
        counts = Counter(words)
        spellings = [[*word[:-1], word[-1] + _END] for word in counts]
        frequency = list(counts.values())
        pairs: Counter = Counter()
        holders: dict[tuple[str, str], set[int]] = defaultdict(set)
        for index, symbols in enumerate(spellings):
            for pair in pairwise(symbols):
                pairs[pair] += frequency[index]
                holders[pair].add(index)
        heap = [(-n, pair) for pair, n in pairs.items()]
        heapq.heapify(heap)
        learned = []
        while heap and len(learned) < merges:
            negative, pair = heapq.heappop(heap)
            if pairs.get(pair, 0) != -negative:
                continue  # a stale entry: the pair's count has changed since
            if -negative < 2:
                break  # merging a pair seen once saves nothing
            learned.append(pair)
            changed = set()
            for index in holders.pop(pair):
                old = spellings[index]
                new = _merged(old, pair)
                for gone in pairwise(old):
                    pairs[gone] -= frequency[index]
                    changed.add(gone)
                for made in pairwise(new):
                    pairs[made] += frequency[index]
                    holders[made].add(index)
                    changed.add(made)
                spellings[index] = new
            del pairs[pair]
            for other in changed - {pair}:
                if pairs[other] > 0:
                    heapq.heappush(heap, (-pairs[other], other))
        return cls(learned)

    def pieces(self, word: str) -> list[str]:
        """``word`` cut into pieces, every one but the last ending in ``@@``."""
        if word not in self._pieces:
            symbols = [*word[:-1], word[-1] + _END]
            while len(symbols) > 1:
                ranked = [(self.ranks.get(p, len(self.ranks)), p) for p in pairwise(symbols)]
                rank, pair = min(ranked)
                if rank == len(self.ranks):
                    break
                symbols = _merged(symbols, pair)
            self._pieces[word] = [piece for s in symbols for piece in self._spelt(s)]
        return self._pieces[word]

    def _spelt(self, symbol: str) -> list[str]:
        """``symbol`` as a piece if known (or no merge made it), else the pieces of the two
        symbols it was merged from."""
        piece = symbol.removesuffix(_END) if symbol.endswith(_END) else symbol + MARK
        if self.known is None or piece in self.known or symbol not in self.parts:
            return [piece]
        return [p for part in self.parts[symbol] for p in self._spelt(part)]

    def split(self, text: str) -> list[str]:
        """The pieces of every whitespace-separated word of ``text``."""
        return [piece for word in text.split() for piece in self.pieces(word)]

    @staticmethod
    def join(pieces: Iterable[str]) -> str:
        """Words back from pieces (a dangling ``@@`` at the very end is dropped)."""
        return " ".join(pieces).replace(MARK + " ", "").removesuffix(MARK)


def _merged(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    """``symbols`` with every non-overlapping occurrence of ``pair`` (left to right) joined."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out
