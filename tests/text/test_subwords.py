import json
from collections import Counter
from itertools import pairwise

import pytest

from nanoseq.text.subwords import Subwords
from nanoseq.text.vocab import UNK_ID, Vocabulary

# Sennrich et al.'s example: "low" x5, "lower" x2, "newest" x6, "widest" x3
WORDS = ["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3


def naive_merges(words, merges):
    """Byte-pair learning as the paper writes it: recount every pair after every merge."""
    spellings = Counter(tuple([*w[:-1], w[-1] + "</w>"]) for w in words)
    learned = []
    for _ in range(merges):
        pairs = Counter()
        for symbols, n in spellings.items():
            for pair in pairwise(symbols):
                pairs[pair] += n
        if not pairs or max(pairs.values()) < 2:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        learned.append(best)
        merged = Counter()
        for symbols, n in spellings.items():
            out, i = [], 0
            while i < len(symbols):
                if symbols[i : i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] += n
        spellings = merged
    return learned


def test_the_papers_example_merges_and_splits():
    subwords = Subwords.learn(WORDS, 3)
    assert subwords.merges == [("e", "s"), ("es", "t</w>"), ("l", "o")]
    assert subwords.pieces("lowest") == ["lo@@", "w@@", "est"]
    assert subwords.pieces("xyz") == ["x@@", "y@@", "z"]  # unseen letters stay letters
    assert subwords.pieces("a") == ["a"]


def test_learning_matches_recounting_from_scratch(sample_dir):
    german = [
        line.split("\t")[0]
        for line in (sample_dir / "text/multi30k_de_en.tsv").read_text().splitlines()
    ]
    words = [w for line in german for w in line.split()]
    fast = Subwords.learn(words, 400)
    assert fast.merges == naive_merges(words, 400)
    assert len(fast.merges) > 100  # real work: many merges before pairs ran out


def test_learning_stops_when_no_pair_repeats():
    assert Subwords.learn(["abc", "def"], 10).merges == []
    assert len(Subwords.learn(WORDS, 1000).merges) < 20


def test_join_undoes_split():
    subwords = Subwords.learn(WORDS, 6)
    text = "the lowest newer widest low , x"
    pieces = subwords.split(text)
    assert any(p.endswith("@@") for p in pieces)
    assert Subwords.join(pieces) == text
    assert Subwords.join(["lo@@"]) == "lo"  # a translation cut mid-word


def test_subword_vocabulary_spells_unseen_words_and_round_trips_as_json():
    vocab = Vocabulary.build([" ".join(WORDS)], "subword", merges=8)
    ids = vocab.encode("lowdest lower")
    assert UNK_ID not in ids.tolist()  # "lowdest" never seen, "lower" seen but cut
    assert vocab.decode(ids) == "lowdest lower"
    # the merges make "est", but training only saw "newest" and "dest": cut back to letters
    assert "est" not in vocab.symbols and vocab.tokenize("lowest")[-1] == "t"
    again = Vocabulary.from_config(json.loads(json.dumps(vocab.get_config())))
    assert (
        again.symbols == vocab.symbols
        and again.encode("lowest").tolist() == vocab.encode("lowest").tolist()
    )
    assert Vocabulary.build(["low low"], "word").get_config().keys() == {"symbols", "level"}


def test_subword_level_needs_its_merges():
    with pytest.raises(ValueError):
        Vocabulary(["a"], "subword")
    with pytest.raises(ValueError):
        Vocabulary(["a"], "word", [])
