"""Train sequence-to-sequence models: preprocess and encode the pairs, length-bucketed padded
batches with teacher forcing, masked (optionally label-smoothed) cross-entropy, and each epoch
the validation loss plus greedy-decoding BLEU/chrF, which picks the saved model and stops early."""

from __future__ import annotations

import logging

import keras
import numpy as np

from nanoseq.text.backbone import TextBackbone
from nanoseq.text.data import encode_pairs, length_buckets, pad, preprocess
from nanoseq.text.seq2seq import MaskedCrossEntropy, Seq2Seq
from nanoseq.text.translate import Translator
from nanoseq.text.vocab import BOS_ID, EOS_ID, Vocabulary, other_vocabularies
from nanoseq.training import Recipe, TrainingRun, adam, fit, seed_everything

log = logging.getLogger(__name__)


class PairBatches(keras.utils.PyDataset):
    """``((source, target_in), target_out)`` batches of pairs of similar length (source plus
    target); sources end in ``<eos>``, ``target_in`` is ``<bos>`` + target, ``target_out`` is
    target + ``<eos>``. With a ``seed`` the batches are redrawn every epoch. Each batch is
    padded to its longest pair, or up to a ``multiple`` (fewer shapes for XLA)."""

    def __init__(self, sources, targets, batch_size, seed=None, multiple=1, **kwargs):
        super().__init__(**kwargs)
        self.sources = [np.r_[s, EOS_ID].astype(np.int32) for s in sources]
        self.targets = [np.asarray(t, dtype=np.int32) for t in targets]
        self.batch_size, self.multiple = batch_size, multiple
        self.lengths = np.array([len(s) + len(t) for s, t in zip(sources, targets, strict=True)])
        self.rng = None if seed is None else np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        rows = self.batches[index]
        source = pad([self.sources[i] for i in rows], self.multiple)
        target_in = pad([np.r_[BOS_ID, self.targets[i]] for i in rows], self.multiple)
        target_out = pad([np.r_[self.targets[i], EOS_ID] for i in rows], self.multiple)
        return (source, target_in), target_out

    def on_epoch_end(self):
        self.batches = length_buckets(self.lengths, self.batch_size, self.rng)


class TranslationValidation(keras.callbacks.Callback):
    """Greedy-translates the validation sources at each epoch's end: ``val_bleu``, ``val_chrf``."""

    def __init__(self, sources: list[str], references: list[str], batch_size: int = 128):
        super().__init__()
        self.sources, self.references, self.batch_size = sources, references, batch_size

    def on_train_begin(self, logs=None):
        self.translator = Translator(self.model)  # its compiled steps read the live weights

    def on_epoch_end(self, epoch, logs=None):
        hypotheses = self.translator.translate(self.sources, batch_size=self.batch_size)
        scores = self.translator.scores(hypotheses, self.references)
        logs = logs if logs is not None else {}
        logs["val_bleu"], logs["val_chrf"] = scores["bleu"], scores["chrf"]
        log.info(
            "epoch %d: validation BLEU %.2f, chrF %.2f; e.g. %r",
            epoch + 1,
            scores["bleu"],
            scores["chrf"],
            hypotheses[0],
        )


def train_seq2seq(
    train_pairs: tuple[list[str], list[str]],
    valid_pairs: tuple[list[str], list[str]],
    run: TrainingRun,
    lowercase: bool = False,
    tokenize: bool = False,
    min_count: int = 1,
    max_vocab: int | None = None,
    subwords: int = 0,
    max_length: int | None = 50,
    embedding_dim: int = 256,
    units: int = 256,
    layers: int = 1,
    cell: str = "gru",
    bidirectional: bool = True,
    attention: str = "bahdanau",
    dropout: float = 0.0,
    tie_weights: bool = False,
    label_smoothing: float = 0.0,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    clipnorm: float = 1.0,
    patience: int | None = None,
    callbacks: list | None = None,
):
    """Build both vocabularies on the training pairs (each side cut into subwords by up to
    ``subwords`` byte-pair merges of its own, if given; else whole words), train as ``run``
    says, and save the model of the best validation BLEU as ``model.keras``; return the model
    and its history. ``max_length`` counts the tokens (subwords) of a side."""
    seed_everything(run.seed)
    preprocessing = {"lowercase": lowercase, "tokenize": tokenize}
    train_src, train_tgt = ([preprocess(s, **preprocessing) for s in side] for side in train_pairs)
    valid_src, valid_tgt = ([preprocess(s, **preprocessing) for s in side] for side in valid_pairs)
    level = "subword" if subwords else "word"
    source_vocab = Vocabulary.build(train_src, level, min_count, max_vocab, subwords)
    target_vocab = Vocabulary.build(train_tgt, level, min_count, max_vocab, subwords)
    train = PairBatches(
        *encode_pairs(train_src, train_tgt, source_vocab, target_vocab, max_length),
        batch_size,
        seed=run.seed,
    )
    valid = PairBatches(
        *encode_pairs(valid_src, valid_tgt, source_vocab, target_vocab, max_length), batch_size
    )
    log.info(
        "vocabularies: %d source, %d target symbols; %d training batches of %d pairs",
        len(source_vocab),
        len(target_vocab),
        len(train),
        batch_size,
    )

    def build():
        encoder = TextBackbone(
            len(source_vocab),
            embedding_dim,
            units,
            layers,
            cell,
            bidirectional=bidirectional,
            dropout=dropout,
            name="encoder",
        )
        model = Seq2Seq(
            encoder,
            len(target_vocab),
            attention,
            source_vocabulary=source_vocab.get_config(),
            target_vocabulary=target_vocab.get_config(),
            preprocessing=preprocessing,
            tie_weights=tie_weights,
        )
        model.build(((None, None), (None, None)))
        return model

    watch = [TranslationValidation(valid_src, valid_tgt), *(callbacks or [])]
    if patience:
        watch.append(
            keras.callbacks.EarlyStopping(monitor="val_bleu", mode="max", patience=patience)
        )
    recipe = Recipe(
        build=build,
        optimizer=adam(clipnorm),
        loss=MaskedCrossEntropy(label_smoothing),
        peak_learning_rate=learning_rate,
        monitor=("val_bleu", "max"),
        callbacks=watch,
        resume_refused=lambda model: other_vocabularies(
            [model.source_vocabulary, model.target_vocabulary], [source_vocab, target_vocab]
        ),
    )
    return fit(run, recipe, train, valid)
