import gzip
import logging

import numpy as np
import pytest

from nanoseq.errors import InputError
from nanoseq.text.data import (
    bptt_windows,
    corpus_text,
    detokenize,
    encode_corpus,
    encode_pairs,
    length_buckets,
    pad,
    preprocess,
    read_pairs,
    read_text,
)
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


def test_pairs_from_a_tab_separated_file_or_two_files(tmp_path):
    (tmp_path / "p.tsv").write_text("ein Hund\ta dog\tCC-BY\nzwei\ttwo\n")
    assert read_pairs(pairs=tmp_path / "p.tsv") == (["ein Hund", "zwei"], ["a dog", "two"])
    with gzip.open(tmp_path / "s.gz", "wt") as handle:
        handle.write("ein Hund\r\nzwei\n")
    (tmp_path / "t.txt").write_text("a dog\ntwo\n")
    pairs = read_pairs(tmp_path / "s.gz", tmp_path / "t.txt")
    assert pairs == (["ein Hund", "zwei"], ["a dog", "two"])


def test_bad_pairs_name_the_file_and_the_problem(tmp_path):
    (tmp_path / "p.tsv").write_text("a\tb\nno tab here\n")
    with pytest.raises(InputError, match="line 2 has no tab-separated second column"):
        read_pairs(pairs=tmp_path / "p.tsv")
    (tmp_path / "s.txt").write_text("a\nb\n")
    (tmp_path / "t.txt").write_text("a\n")
    with pytest.raises(InputError, match="2 lines, but .*t.txt has 1"):
        read_pairs(tmp_path / "s.txt", tmp_path / "t.txt")


def test_preprocess_rule():
    text = "Zwei junge, weiße Männer (im T-Shirt) sind's!"
    assert preprocess(text) == text
    assert preprocess(text, lowercase=True, tokenize=True) == (
        "zwei junge , weiße männer ( im t-shirt ) sind's !"
    )


def test_detokenize_writes_tokenised_text_back():
    for text in [
        "Zwei junge, weiße Männer (im T-Shirt) sind's!",
        'A sign reads "Stop here!" and costs $5 (50%).',
        "He said 'hi' twice; then: nothing?",
    ]:
        assert detokenize(preprocess(text, tokenize=True)) == text


def test_length_filter_reports_what_it_drops(caplog):
    vocab = Vocabulary.build(["a b c d e f"], "word")
    with caplog.at_level(logging.INFO):
        sources, targets = encode_pairs(
            ["a b", "a b c d e f", "", "c"], ["c", "d", "e", "a b c d e"], vocab, vocab, 4
        )
    assert [list(s) for s in sources] == [[4, 5]] and [list(t) for t in targets] == [[6]]
    assert "dropped 3 of 4 pairs" in caplog.text


def test_length_buckets_cover_every_index_once_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 1000)
    batches = length_buckets(lengths, 32, np.random.default_rng(1), pool=10)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 8  # sorted within pools of 320: neighbours, not the whole range
    again = length_buckets(lengths, 32, np.random.default_rng(1), pool=10)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def test_pad_right_to_a_multiple():
    batch = pad([np.array([4, 5, 6]), np.array([7])], multiple=4)
    assert batch.tolist() == [[4, 5, 6, 0], [7, 0, 0, 0]]
