r"""Text data: corpus files -> token streams -> truncated-BPTT windows (language models), and
parallel corpora -> cleaned sentence pairs -> length-bucketed padded batches (seq2seq).

``bptt_windows`` splits one long stream into ``batch_size`` contiguous rows and cuts them into
``steps``-long windows ordered so that consecutive batches continue each row: fed to ``fit`` with
``batch_size`` rows and no shuffling, row k of batch i+1 follows row k of batch i.

Sentence preprocessing is one documented rule (:func:`preprocess`): optional lower-casing, and
optional tokenisation that splits punctuation off words (``\w+`` runs, joined by inner ``-`` or
``'``, are words; every other non-space character is a token of its own).
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError
from nanoseq.text.vocab import EOS, PAD_ID, Vocabulary

log = logging.getLogger(__name__)
_TOKEN = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")


def read_text(path: str | Path) -> str:
    """A UTF-8 text file, plain or gzipped."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        with (gzip.open if gzipped else open)(path, "rt", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise InputError(f"not a readable UTF-8 text file ({error})", path) from None
    if not text.strip():
        raise InputError("empty text", path)
    return text


def corpus_text(text: str, level: str) -> str:
    """Word corpora get ``<eos>`` at every line end (the PTB convention, counted as a token)."""
    if level == "char":
        return text
    return " ".join(f"{line} {EOS}" for line in text.splitlines() if line.strip())


def encode_corpus(paths: Iterable[str | Path], vocab: Vocabulary) -> np.ndarray:
    """All files, one after the other, as one id stream."""
    return np.concatenate(
        [vocab.encode(corpus_text(read_text(path), vocab.level)) for path in paths]
    )


def bptt_windows(stream: np.ndarray, batch_size: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-token targets, each ``(windows * batch_size, steps)``, batch-major order."""
    rows = (len(stream) - 1) // batch_size
    windows = rows // steps
    if windows == 0:
        raise InputError(
            f"text too short: {len(stream)} tokens for batch {batch_size} x {steps} steps"
        )
    usable = windows * steps

    def cut(offset):
        grid = stream[offset : offset + rows * batch_size].reshape(batch_size, rows)[:, :usable]
        # (batch, windows, steps) -> (windows, batch, steps): batch i is window i of every row
        return grid.reshape(batch_size, windows, steps).transpose(1, 0, 2).reshape(-1, steps)

    return cut(0), cut(1)


def read_lines(path: str | Path) -> list[str]:
    """One sentence per line (plain or gzipped); line ends and carriage returns removed."""
    text = read_text(path)
    return [line.rstrip("\r") for line in text.rstrip("\n").split("\n")]


def read_pairs(
    source: str | Path | None = None,
    target: str | Path | None = None,
    pairs: str | Path | None = None,
) -> tuple[list[str], list[str]]:
    """Sentence pairs from two aligned files, or from the first two columns of one
    tab-separated file (further columns are ignored)."""
    if pairs is not None:
        sources, targets = [], []
        for number, line in enumerate(read_lines(pairs), 1):
            columns = line.split("\t")
            if len(columns) < 2:
                raise InputError(f"line {number} has no tab-separated second column", pairs)
            sources.append(columns[0])
            targets.append(columns[1])
        return sources, targets
    if source is None or target is None:
        raise InputError("give a source and a target file, or a tab-separated pairs file")
    sources, targets = read_lines(source), read_lines(target)
    if len(sources) != len(targets):
        raise InputError(f"{len(sources)} lines, but {target} has {len(targets)}", source)
    return sources, targets


def preprocess(sentence: str, lowercase: bool = False, tokenize: bool = False) -> str:
    """The module's one preprocessing rule; the result is split on whitespace into words."""
    sentence = sentence.lower() if lowercase else sentence
    return " ".join(_TOKEN.findall(sentence) if tokenize else sentence.split())


_CLOSING = set(".,;:!?)]}%")
_OPENING = set("([{$#")
_QUOTES = {'"', "'"}


def detokenize(tokens: str) -> str:
    """Tokenised text (:func:`preprocess`'s) joined back as it is written: no space before
    closing punctuation or after opening brackets, and straight quotes taken in pairs."""
    out, quotes, glue = "", 0, True  # glue: no space before the next token
    for token in tokens.split():
        opening_quote = token in _QUOTES and quotes % 2 == 0
        if token in _QUOTES:
            quotes += 1
        attach = glue or token in _CLOSING or (token in _QUOTES and not opening_quote)
        out += token if attach else " " + token
        glue = token in _OPENING or opening_quote
    return out


def encode_pairs(
    sources: list[str],
    targets: list[str],
    source_vocab: Vocabulary,
    target_vocab: Vocabulary,
    max_length: int | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Token ids of preprocessed pairs (no ``<bos>``/``<eos>``); pairs with an empty side or a
    side longer than ``max_length`` tokens are dropped, and how many is logged."""
    kept_sources, kept_targets = [], []
    for source, target in zip(sources, targets, strict=True):
        x, y = source_vocab.encode(source), target_vocab.encode(target)
        if len(x) and len(y) and (max_length is None or max(len(x), len(y)) <= max_length):
            kept_sources.append(x)
            kept_targets.append(y)
    dropped = len(sources) - len(kept_sources)
    if dropped:
        log.info(
            "dropped %d of %d pairs (empty or longer than %s tokens)",
            dropped,
            len(sources),
            max_length,
        )
    if not kept_sources:
        raise InputError(f"no sentence pair left of {len(sources)} after the length filter")
    return kept_sources, kept_targets


def pad(sequences: list[np.ndarray], multiple: int = 1) -> np.ndarray:
    """``(len(sequences), longest)`` int32 padded with ``<pad>`` on the right; the length is
    rounded up to ``multiple`` (fewer distinct shapes for compiled training)."""
    longest = max(len(s) for s in sequences)
    longest = -(-longest // multiple) * multiple
    batch = np.full((len(sequences), longest), PAD_ID, dtype=np.int32)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = sequence
    return batch


def length_buckets(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None, pool: int = 50
) -> list[np.ndarray]:
    """Batches of indices of similar length. With ``rng``: a random order, sorted by length
    within pools of ``pool`` batches, batches shuffled; without: sorted by length."""
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    order = rng.permutation(len(lengths))
    size = batch_size * pool
    batches = []
    for start in range(0, len(order), size):
        block = order[start : start + size]
        block = block[np.argsort(lengths[block], kind="stable")]
        batches.extend(block[i : i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(batches)
    return batches
