"""Measures shared by the model families. Basecalls: identity and error profile against a
reference, aligned with mappy (minimap2, ``map-ont``; primary hit; identity = mlen / blen; an
unmapped read counts 0); training chunks: accuracy as bonito reports it. Language models: nats
per token, perplexity, bits per character. Translations: BLEU and chrF (sacrebleu)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError
from nanoseq.io import mean_qscore
from nanoseq.sequence import reverse_complement

_CIGAR = re.compile(r"(\d+)([MIDNSHP=X])")
HOMOPOLYMER = 5
MAX_Q = 93  # the FASTQ range


class Aligner:
    """A minimap2 index of the reference, and per-read alignment figures."""

    def __init__(self, reference: str):
        import mappy

        path = Path(reference)
        if not path.is_file():
            raise InputError("no such file", path)
        with open(path, "rb") as handle:
            head = handle.read(1)
        if head not in (b">", b"@", b"\x1f"):  # FASTA, FASTQ or gzip
            raise InputError("not a FASTA file (no '>' header first)", path)
        self.index = mappy.Aligner(str(reference), preset="map-ont")
        lengths = [len(self.index.seq(name) or "") for name in self.index.seq_names]
        if not self.index or not any(lengths):
            raise InputError("cannot index the reference (not a FASTA/FASTQ file?)", reference)
        self.genome = {name: self.index.seq(name) for name in self.index.seq_names}

    def hits(self, sequence: str) -> list:
        """The read's alignments (mappy's, with MD): the primary first, then the supplementary
        ones (secondary alignments left out)."""
        return [hit for hit in self.index.map(sequence, MD=True) if hit.is_primary]

    def header(self) -> dict:
        """The reference's ``SQ`` lines for a SAM/BAM header."""
        return {"SQ": [{"SN": name, "LN": len(seq)} for name, seq in self.genome.items()]}

    def align(
        self,
        sequence: str,
        qualities: np.ndarray | None = None,
        hits=None,
        read_qscore: float | None = None,
    ) -> dict:
        """One row of figures for one read (identity 0 and ``mapped`` False when unmapped), from
        its ``hits`` where they are known already; its mean qscore the one its basecaller gave
        (``read_qscore``), else its qualities'."""
        hits = self.hits(sequence) if hits is None else hits
        hit = hits[0] if hits else None
        row = {"read_length": len(sequence), "mapped": hit is not None, "identity": 0.0}
        if read_qscore is not None:
            row["mean_qscore"] = float(read_qscore)
        elif qualities is not None and len(qualities):
            row["mean_qscore"] = mean_qscore(qualities)
        if hit is None:
            return row
        ref = self.genome[hit.ctg][hit.r_st : hit.r_en]
        query = sequence[hit.q_st : hit.q_en]
        quals = None if qualities is None else np.asarray(qualities)[hit.q_st : hit.q_en]
        if hit.strand < 0:
            query = reverse_complement(query)
            quals = None if quals is None else quals[::-1]
        columns = _columns(hit.cigar_str, query, ref)
        row.update(
            genome=hit.ctg,
            genome_start=hit.r_st,
            genome_end=hit.r_en,
            strand="+" if hit.strand > 0 else "-",
            identity=hit.mlen / hit.blen,
            aligned_length=hit.blen,
            **columns.rates(),
            **columns.homopolymers(ref),
            **columns.qualities(quals),
        )
        return row


class _Columns:
    """The alignment as per-reference-base and per-read-base outcomes."""

    def __init__(self, ref_ok, ref_deleted, read_ok, read_inserted, inserts_before, blen):
        self.ref_ok, self.ref_deleted = ref_ok, ref_deleted
        self.read_ok, self.read_inserted = read_ok, read_inserted
        self.inserts_before, self.blen = inserts_before, blen

    @property
    def identity(self) -> float:
        """Matched bases over the alignment's columns (matches, mismatches and gaps)."""
        columns = len(self.read_ok) + int(self.ref_deleted.sum())
        return int(self.read_ok.sum()) / columns if columns else 0.0

    def rates(self) -> dict:
        mismatches = int((~self.ref_ok & ~self.ref_deleted).sum())
        return {
            "mismatch_rate": mismatches / self.blen,
            "insertion_rate": int(self.read_inserted.sum()) / self.blen,
            "deletion_rate": int(self.ref_deleted.sum()) / self.blen,
        }

    def homopolymers(self, ref: str) -> dict:
        """Reference runs of >= 5 equal bases reproduced exactly (every base matched and no
        insertion inside or at either edge)."""
        total = correct = 0
        for run in re.finditer("|".join(f"{b}{{{HOMOPOLYMER},}}" for b in "ACGT"), ref):
            a, b = run.span()
            total += 1
            inserted = self.inserts_before[a : b + 1].any() if b < len(ref) else True
            correct += bool(self.ref_ok[a:b].all() and not inserted)
        return {"homopolymers": total, "homopolymers_correct": correct}

    def qualities(self, quals) -> dict:
        if quals is None or not len(quals):
            return {}
        right, wrong = quals[self.read_ok], quals[~self.read_ok]
        return {
            "qscore_correct_sum": float(right.sum()),
            "qscore_correct_n": int(right.size),
            "qscore_wrong_sum": float(wrong.sum()),
            "qscore_wrong_n": int(wrong.size),
            "bases_by_q": np.bincount(quals.astype(np.int64), minlength=MAX_Q + 1),
            "errors_by_q": np.bincount(wrong.astype(np.int64), minlength=MAX_Q + 1),
        }


def _columns(cigar: str, query: str, ref: str) -> _Columns:
    ref_ok = np.zeros(len(ref), dtype=bool)
    ref_deleted = np.zeros(len(ref), dtype=bool)
    read_ok = np.zeros(len(query), dtype=bool)
    read_inserted = np.zeros(len(query), dtype=bool)
    inserts_before = np.zeros(len(ref) + 1, dtype=bool)  # an insertion just before ref pos i
    r = q = 0
    for length, op in ((int(n), op) for n, op in _CIGAR.findall(cigar)):
        if op in "M=X":
            same = np.frombuffer(query[q : q + length].encode(), np.uint8) == np.frombuffer(
                ref[r : r + length].encode(), np.uint8
            )
            ref_ok[r : r + length] = same
            read_ok[q : q + length] = same
            r, q = r + length, q + length
        elif op == "I":
            read_inserted[q : q + length] = True
            inserts_before[r] = True
            q += length
        elif op in "DN":
            ref_deleted[r : r + length] = True
            r += length
    return _Columns(ref_ok, ref_deleted, read_ok, read_inserted, inserts_before, max(1, r))


def aligned(call: str, truth: str) -> _Columns:
    """``call`` aligned to ``truth`` end to end (edlib), read as :class:`Aligner`'s alignments."""
    import edlib

    cigar = edlib.align(call, truth, task="path")["cigar"] if call and truth else None
    if cigar is None:  # nothing to align: every base of the call inserted, of the truth deleted
        cigar = "".join(f"{n}{op}" for n, op in ((len(call), "I"), (len(truth), "D")) if n)
    return _columns(cigar, call, truth)


def chunk_accuracy(reference: str, call: str) -> float:
    """1 - edit distance / reference length (floored at 0), as bonito reports it."""
    import edlib

    if not reference:
        return 0.0
    distance = edlib.align(call, reference, task="distance")["editDistance"]
    return max(0.0, 1.0 - distance / len(reference))


def median_accuracy(references: list[str], calls: list[str]) -> float:
    """The median :func:`chunk_accuracy` of calls against their references."""
    pairs = zip(references, calls, strict=True)
    return float(np.median([chunk_accuracy(r, c) for r, c in pairs]))


def summarise(rows: Iterable[dict]) -> dict:
    """Run-level figures from per-read rows: mapped fraction, identity, error profile."""
    rows = list(rows)
    if not rows:
        return {"reads": 0}
    identity = np.array([row["identity"] for row in rows])
    mapped = [row for row in rows if row["mapped"]]
    blen = sum(row["aligned_length"] for row in mapped)

    def rate(key):
        return sum(row[key] * row["aligned_length"] for row in mapped) / blen if blen else None

    def total(key):
        return sum(row.get(key, 0) for row in mapped)

    def mean_q(kind):
        n = total(f"qscore_{kind}_n")
        return total(f"qscore_{kind}_sum") / n if n else None

    homopolymers = total("homopolymers")
    return {
        "reads": len(rows),
        "mapped_fraction": len(mapped) / len(rows),
        "median_identity": float(np.median(identity)),
        "mean_identity": float(np.mean(identity)),
        "mismatch_rate": rate("mismatch_rate"),
        "insertion_rate": rate("insertion_rate"),
        "deletion_rate": rate("deletion_rate"),
        "homopolymer_accuracy": total("homopolymers_correct") / homopolymers
        if homopolymers
        else None,
        "homopolymers": homopolymers,
        "mean_qscore_correct_bases": mean_q("correct"),
        "mean_qscore_wrong_bases": mean_q("wrong"),
        "aligned_bases": blen,
        **calibration(mapped),
    }


def phred(error_rate: float) -> float:
    """-10 log10 of an error rate, capped at Q60 (no errors seen)."""
    return 60.0 if error_rate <= 1e-6 else -10 * math.log10(error_rate)


def calibration(mapped: list[dict]) -> dict:
    """How well qualities say what they mean: per predicted Q, the aligned bases and errors
    (mismatched or inserted) of the mapped reads, the Q those measure and its 95 % interval
    (:func:`measured_q_interval`); and the mean absolute difference between each read's mean
    qscore and -10 log10(1 - its identity)."""
    bases = sum((row["bases_by_q"] for row in mapped if "bases_by_q" in row), np.zeros(MAX_Q + 1))
    errors = sum(
        (row["errors_by_q"] for row in mapped if "errors_by_q" in row), np.zeros(MAX_Q + 1)
    )
    bins = [
        {
            "q": q,
            "bases": int(n),
            "errors": int(e),
            "measured_q": phred(e / n),
            "measured_q_interval": measured_q_interval(int(e), int(n)),
        }
        for q, (n, e) in enumerate(zip(bases, errors, strict=True))
        if n
    ]
    gaps = [
        abs(row["mean_qscore"] - phred(1 - row["identity"]))
        for row in mapped
        if "mean_qscore" in row
    ]
    return {
        "calibration": bins,
        "read_qscore_error": float(np.mean(gaps)) if gaps else None,
    }


def measured_q_interval(errors: int, bases: int) -> list[float]:
    """The Q that ``errors`` in ``bases`` measure, as an exact (Clopper-Pearson) 95 % interval:
    few errors say little (two in 1,500 bases: Q23.2 to Q37.9), so a bin near the top can lie
    a few Q from what it predicts and still be calibrated."""
    from scipy.stats import beta

    worst = beta.ppf(0.975, errors + 1, bases - errors) if errors < bases else 1.0
    best = beta.ppf(0.025, errors, bases - errors + 1) if errors else 0.0
    return [round(phred(worst), 2) + 0.0, round(phred(best), 2)]  # + 0.0: no -0.0


def chance_measured_within(q: int, bases: int, within: float = 2.0) -> float:
    """The chance that a calibrated bin of Q ``q`` (``bases`` bases, each wrong with probability
    10^(-q/10), independently) measures a Q (:func:`phred`) within ``within`` of ``q``: near 1
    for a bin of many errors, but a bin of 1,728 bases at Q27 expects 3.4 errors and measures
    within 2 Q only when it has 3 to 5 (a chance of 0.53)."""
    from scipy.stats import binom

    errors = np.arange(bases + 1)
    measured = np.array([phred(e / bases) for e in errors])
    near = np.abs(measured - q) <= within
    return float(binom.pmf(errors[near], bases, 10 ** (-q / 10)).sum())


def text_scores(nats: float, tokens: int, level: str) -> dict:
    """Cross-entropy as nats per token and perplexity; bits per char for character models."""
    per_token = nats / tokens
    scores = {"tokens": tokens, "nats_per_token": per_token, "perplexity": math.exp(per_token)}
    if level == "char":
        scores["bits_per_char"] = per_token / math.log(2)
    return scores


def translation_scores(
    hypotheses: list[str], references: list[str], tokenised: bool = False
) -> dict:
    """Corpus BLEU and chrF (sacrebleu, default settings) with their signatures. ``tokenised``:
    the texts were tokenised on purpose (the tutorials' way), so sacrebleu's warning that they
    look tokenised is not logged (the scores and signatures are the same)."""
    import sacrebleu

    bleu, chrf = sacrebleu.metrics.BLEU(force=tokenised), sacrebleu.metrics.CHRF()
    refs = [list(references)]
    return {
        "sentences": len(hypotheses),
        "bleu": bleu.corpus_score(hypotheses, refs).score,
        "chrf": chrf.corpus_score(hypotheses, refs).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
