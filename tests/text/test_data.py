import gzip

import numpy as np
import pytest

from nanoseq.errors import InputError
from nanoseq.text.data import bptt_windows, corpus_text, encode_corpus, read_text
from nanoseq.text.vocab import Vocabulary


def test_rows_continue_from_batch_to_batch():
    stream = np.arange(1000)
    x, y = bptt_windows(stream, batch_size=4, steps=10)
    assert x.shape == y.shape and x.shape[1] == 10 and len(x) % 4 == 0
    np.testing.assert_array_equal(y, x + 1)  # targets are the next token
    batches = x.reshape(-1, 4, 10)
    for i in range(len(batches) - 1):
        # row k of batch i+1 starts right where row k of batch i ended
        np.testing.assert_array_equal(batches[i + 1][:, 0], batches[i][:, -1] + 1)
    rows = batches[0][:, 0]
    assert (np.diff(rows) == rows[1] - rows[0]).all() and rows[1] - rows[0] >= 240


def test_too_short():
    with pytest.raises(InputError, match="too short"):
        bptt_windows(np.arange(20), batch_size=4, steps=10)


def test_word_corpus_counts_eos(tmp_path):
    path = tmp_path / "c.txt.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("the cat\n\na dog\n")
    text = read_text(path)
    assert corpus_text(text, "word") == "the cat <eos> a dog <eos>"
    vocab = Vocabulary.build([corpus_text(text, "word")], "word")
    assert len(encode_corpus([path], vocab)) == 6
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(InputError, match="empty"):
        read_text(tmp_path / "empty.txt")
