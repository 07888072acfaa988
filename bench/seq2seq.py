"""Seq2seq benchmark: Multi30k German -> English. One JSON line.

    python bench/seq2seq.py [--minutes 60] [--lowercase] [--seed 1] [--output DIR]

Trains a cased, tokenising model on ``train`` (29,000 pairs) for the time given, picks the
epoch by validation BLEU on ``val``, and reports sacrebleu BLEU and chrF on
``test_2016_flickr`` with greedy decoding and beam 5, two ways: on lower-cased, tokenised text
(as the tutorials) and detokenised against the cased references with sacrebleu's default
signature (as WMT papers); the training time and target tokens/s, and beam search's time as a
ratio of greedy's, measured in the same run. ``--lowercase`` trains on lower-cased text, as the
tutorials do, and reports the first way only (its translations have no case to score the
second). Data from ../shared/data/text/multi30k.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "text" / "multi30k"

CONFIG = dict(
    lowercase=False,
    tokenize=True,
    min_count=2,
    subwords=8000,  # byte-pair merges per side: 35 % of German test sentences had an unknown word
    max_length=50,
    embedding_dim=384,  # 256 peaked on validation well before its 60 minutes ended
    units=384,
    layers=1,
    cell="gru",
    bidirectional=True,
    attention="bahdanau",
    dropout=0.3,
    tie_weights=True,
    label_smoothing=0.1,
    batch_size=64,
    learning_rate=2e-3,
    clipnorm=1.0,
)
EPOCHS = 40  # the time limit ends the run first (learning rates follow its clock)


def target_tokens(model, sources: list[str], targets: list[str]) -> int:
    """Target tokens (with ``<eos>``; words or subwords, as the trained ``model``'s
    vocabularies cut them) in one epoch: the pairs the length filter keeps."""
    from nanoseq.text.data import encode_pairs
    from nanoseq.text.translate import Translator

    translator = Translator(model)
    prepared = ([translator.prepare(s) for s in side] for side in (sources, targets))
    vocabularies = translator.source_vocab, translator.target_vocab
    _, kept = encode_pairs(*prepared, *vocabularies, CONFIG["max_length"])
    return sum(len(t) + 1 for t in kept)


def test_scores(model: str, sources, references, width: int, folder: Path, cased: bool) -> dict:
    """BLEU and chrF of ``model``'s test translations, tokenised and lower-cased, and (a
    ``cased`` model's) detokenised and cased; the decoding time."""
    from nanoseq.metrics import translation_scores
    from nanoseq.text.data import preprocess
    from nanoseq.text.translate import evaluate_translation

    path = folder / f"test.beam{width}.txt"
    found = evaluate_translation(model, sources, references, path, beam_width=width)
    lowered = [line.lower() for line in path.read_text().splitlines()]
    lowered_references = [preprocess(r, True, True) for r in references]
    tokenised = translation_scores(lowered, lowered_references, tokenised=True)
    scores = {"bleu": round(tokenised["bleu"], 2), "chrf": round(tokenised["chrf"], 2)}
    signatures = {"lowercase_tokenised": tokenised["bleu_signature"]}
    if cased:
        detokenised = found["detokenised"]
        scores["bleu_cased_detokenised"] = round(detokenised["bleu"], 2)
        scores["chrf_cased_detokenised"] = round(detokenised["chrf"], 2)
        signatures["cased_detokenised"] = detokenised["bleu_signature"]
    return {**scores, "seconds": found["seconds"], "signatures": signatures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60, help="Training time limit.")
    parser.add_argument(
        "--lowercase", action="store_true", help="Train on lower-cased text (the tutorials' way)."
    )
    parser.add_argument("--output", help="Training folder (default: a temporary one).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1, help="Initial weights and batch order.")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s")

    from nanoseq.runtime import set_threads
    from nanoseq.text.data import read_pairs
    from nanoseq.text.seq2seq_train import train_seq2seq
    from nanoseq.training import TrainingRun

    set_threads(args.threads)

    def split(name):
        return read_pairs(DATA / f"{name}.de.gz", DATA / f"{name}.en.gz")

    output = Path(args.output or tempfile.mkdtemp()) / "run"
    train = split("train")
    start = time.perf_counter()
    run = TrainingRun(output, epochs=EPOCHS, max_minutes=args.minutes, seed=args.seed)
    config = {**CONFIG, "lowercase": args.lowercase}
    trained, history = train_seq2seq(train, split("val"), run, **config)
    seconds = time.perf_counter() - start
    model = str(output / "model.keras")
    test_sources, test_references = split("test_2016_flickr")
    cased = not args.lowercase
    greedy = test_scores(model, test_sources, test_references, 1, output, cased)
    beam = test_scores(model, test_sources, test_references, 5, output, cased)
    val_bleu = history.history["val_bleu"]
    # the epochs before the last, which the time limit may have cut short (validation included)
    whole = max(1, len(val_bleu) - 1)
    tokens_per_s = target_tokens(trained, *train) * whole / history.history["seconds"][whole - 1]
    result = {
        "benchmark": "seq2seq-multi30k-de-en",
        "config": {**config, "epochs": EPOCHS, "max_minutes": args.minutes, "seed": args.seed},
        "epochs_run": len(val_bleu),
        "best_epoch": int(max(range(len(val_bleu)), key=val_bleu.__getitem__)) + 1,
        "val_bleu_greedy": round(max(val_bleu), 2),
        "train_seconds": round(seconds),
        "train_target_tokens_per_s": round(tokens_per_s),
        **{f"test_{key}_greedy": value for key, value in greedy.items() if key != "signatures"},
        **{f"test_{key}_beam5": value for key, value in beam.items() if key != "signatures"},
        "beam5_time_vs_greedy": round(beam["seconds"] / greedy["seconds"], 2),
        "bleu_signatures": greedy["signatures"],
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
