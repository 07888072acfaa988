import numpy as np
import pytest

from nanoseq.errors import InputError
from nanoseq.text.vocab import BOS_ID, EOS_ID, UNK_ID, Vocabulary


def test_char_vocabulary_round_trip_and_unknowns():
    vocab = Vocabulary.build(["hello world"], "char")
    assert vocab.symbols[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert vocab.symbols[4] == "l"  # most frequent first
    ids = vocab.encode("hold", bos=True, eos=True)
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID and ids.dtype == np.int32
    assert vocab.decode(ids) == "hold"
    assert vocab.encode("xyz").tolist() == [UNK_ID] * 3
    assert vocab.decode(vocab.encode("hex")) == "he<unk>"


def test_word_vocabulary_cutoffs_and_config():
    texts = ["the cat sat", "the dog sat", "the end"]
    vocab = Vocabulary.build(texts, "word", min_count=2)
    assert vocab.symbols[4:] == ["the", "sat"]
    assert vocab.decode(vocab.encode("the cat sat")) == "the <unk> sat"
    small = Vocabulary.build(texts, "word", max_size=5)
    assert len(small) == 5 and small.symbols[4] == "the"
    again = Vocabulary.from_config(vocab.get_config())
    assert again.symbols == vocab.symbols and again.level == "word"
    # a corpus that already writes <unk> (PTB) maps it to the special id, not a new symbol
    ptb = Vocabulary.build(["a <unk> b <eos>"], "word")
    assert ptb.encode("<unk> <eos>").tolist() == [UNK_ID, EOS_ID] and len(ptb) == 6


def test_bad_level():
    with pytest.raises(InputError):
        Vocabulary([], "byte")
