"""How sample_data/ was made from the project's shared data (run once from the repo root).

reads/lambda.pod5 + reads/lambda_truth.fasta: 6 segments of ~2,500 bases of real R9.4.1 lambda
reads (Tombo-resquiggled fast5, original calibration), all from reference positions < 38,000 (the
training side of the lambda split); the truth is each segment's Tombo bases.
labelled/tombo_lambda.fast5: one Tombo-resquiggled lambda read spanning the 38,000 split.
formats/: small files of each layout, copied as they are, plus a text SLOW5 written by pyslow5
from two reads of the BLOW5 file.
text/multi30k_de_en.tsv: the first 100 German-English pairs of Multi30k's training split.
"""

import gzip
import shutil
import uuid
from pathlib import Path

import h5py
import pyslow5

from nanoseq.signal.readers import read_signal
from nanoseq.signal.writers import write_signal

SHARED = Path("../shared/data/nanopore")
TEXT = Path("../shared/data/text")
OUT = Path("sample_data")
BASES, LIMIT = 2500, 38_000


def lambda_segments(count=6):
    """Segments of the first ``count`` reads with enough bases below the split, and their truth."""
    found = 0
    for path in sorted((SHARED / "lambda_r941/fast5").glob("*.fast5")):
        if found == count:
            return
        with h5py.File(path) as f:
            template = f["Analyses/RawGenomeCorrected_000/BaseCalled_template"]
            events, align = template["Events"], dict(template["Alignment"].attrs)
            first = int(events.attrs["read_start_rel_to_raw"])
            starts, bases = events["start"][()], events["base"][()]
        n = len(bases)
        if align["mapped_strand"] == "+":  # reference position of read base i
            ref = [int(align["mapped_start"]) + i for i in range(n)]
        else:
            ref = [int(align["mapped_end"]) - 1 - i for i in range(n)]
        ok = [i for i in range(n - BASES) if ref[i] < LIMIT and ref[i + BASES] < LIMIT]
        if not ok:
            continue
        found += 1
        i0 = ok[len(ok) // 2]
        lo, hi = first + int(starts[i0]), first + int(starts[i0 + BASES])
        (read,) = read_signal([path])
        read.read_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{path.stem}:{lo}"))
        read.signal = read.signal[lo:hi]
        read.start_sample += lo
        read.run_id = "lambda-sample"
        yield read, b"".join(bases[i0 : i0 + BASES]).decode()


def write_lambda():
    segments = list(lambda_segments())
    write_signal((read for read, _ in segments), OUT / "reads/lambda.pod5")
    truth = "".join(f">{read.read_id}\n{bases}\n" for read, bases in segments)
    (OUT / "reads/lambda_truth.fasta").write_text(truth)
    shutil.copy(SHARED / "lambda_r941/lambda.fasta", OUT / "reads/lambda.fasta")
    shutil.copy(
        next((SHARED / "lambda_r941/fast5").glob("210dfbc9*.fast5")),
        OUT / "labelled/tombo_lambda.fast5",
    )


def write_formats():
    for name in (
        "multi_vbz.fast5",
        "single_read_v1.fast5",
        "single_read_multi_layout.fast5",
        "r1041_4khz.blow5",
        "r1041_single.pod5",
    ):
        shutil.copy(SHARED / "formats" / name, OUT / "formats" / name)
    source = pyslow5.Open(str(SHARED / "formats/r1041_4khz.blow5"), "r")
    header = source.get_all_headers(read_group=0)
    target = OUT / "formats/r1041_two_reads.slow5"
    target.unlink(missing_ok=True)
    sink = pyslow5.Open(str(target), "w")
    sink.write_header({k: v for k, v in header.items() if v is not None})
    for i, record in enumerate(source.seq_reads(pA=False, aux="all")):
        if i == 2:
            break
        aux = {
            k: record[k]
            for k in ("channel_number", "median_before", "read_number", "start_mux", "start_time")
            if k in record
        }
        core = {
            k: record[k]
            for k in (
                "read_id",
                "read_group",
                "digitisation",
                "offset",
                "range",
                "sampling_rate",
                "len_raw_signal",
                "signal",
            )
        }
        sink.write_record(core, aux)
    sink.close()


def write_pairs(count=100):
    sides = [(TEXT / f"multi30k/train.{language}.gz").read_bytes() for language in ("de", "en")]
    de, en = (gzip.decompress(side).decode().split("\n")[:count] for side in sides)
    (OUT / "text").mkdir(exist_ok=True)
    (OUT / "text/multi30k_de_en.tsv").write_text(
        "".join(f"{a}\t{b}\n" for a, b in zip(de, en, strict=True))
    )


if __name__ == "__main__":
    write_lambda()
    write_formats()
    write_pairs()
