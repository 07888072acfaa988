"""How sample_data/ was made from the project's shared data (run once from the repo root).

reads/lambda.pod5 + reads/lambda_truth.fasta: 6 segments of ~2,500 bases of real R9.4.1 lambda
reads (Tombo-resquiggled fast5, original calibration), all from reference positions < 38,000 (the
training side of the lambda split); the truth is each segment's Tombo bases.
formats/: small files of each layout, copied as they are, plus a text SLOW5 written by pyslow5
from two reads of the BLOW5 file.
"""

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import h5py
import pod5
import pyslow5

SHARED = Path("../shared/data/nanopore")
OUT = Path("sample_data")
BASES, LIMIT = 2500, 38_000


def lambda_segments(count=6):
    found = 0
    for path in sorted((SHARED / "lambda_r941/fast5").glob("*.fast5")):
        if found == count:
            return
        with h5py.File(path) as f:
            template = f["Analyses/RawGenomeCorrected_000/BaseCalled_template"]
            events, align = template["Events"], template["Alignment"].attrs
            first = int(events.attrs["read_start_rel_to_raw"])
            starts, bases = events["start"], events["base"]
            n = len(bases)
            # reference position of read base i
            if align["mapped_strand"] == "+":
                ref = [int(align["mapped_start"]) + i for i in range(n)]
            else:
                ref = [int(align["mapped_end"]) - 1 - i for i in range(n)]
            ok = [i for i in range(n - BASES) if ref[i] < LIMIT and ref[i + BASES] < LIMIT]
            if not ok:
                continue
            found += 1
            i0 = ok[len(ok) // 2]
            lo, hi = first + int(starts[i0]), first + int(starts[i0 + BASES])
            raw = f["Raw/Reads"][next(iter(f["Raw/Reads"]))]
            channel = f["UniqueGlobalKey/channel_id"].attrs
            yield {
                "read_id": uuid.uuid5(uuid.NAMESPACE_URL, f"{path.stem}:{lo}"),
                "signal": raw["Signal"][lo:hi],
                "channel": int(channel["channel_number"]),
                "offset": float(channel["offset"]),
                "scale": float(channel["range"]) / float(channel["digitisation"]),
                "start": int(raw.attrs["start_time"]) + lo,
                "read_number": int(raw.attrs["read_number"]),
                "truth": b"".join(bases[i0 : i0 + BASES]).decode(),
            }


def write_lambda():
    when = datetime(2021, 3, 15, tzinfo=UTC)
    run = pod5.RunInfo(
        acquisition_id="lambda-sample",
        acquisition_start_time=when,
        adc_max=4095,
        adc_min=-4096,
        context_tags={"sample_frequency": "4000", "sequencing_kit": "sqk-lsk109"},
        experiment_name="lambda sample",
        flow_cell_id="FLG001",
        flow_cell_product_code="FLO-FLG001",
        protocol_name="",
        protocol_run_id="",
        protocol_start_time=when,
        sample_id="lambda",
        sample_rate=4000,
        sequencing_kit="sqk-lsk109",
        sequencer_position="",
        sequencer_position_type="GridION",
        software="",
        system_name="",
        system_type="",
        tracking_id={},
    )
    target = OUT / "reads/lambda.pod5"
    target.unlink(missing_ok=True)
    truth = []
    with pod5.Writer(target) as writer:
        for seg in lambda_segments():
            writer.add_read(
                pod5.Read(
                    read_id=seg["read_id"],
                    pore=pod5.Pore(seg["channel"], 1, "not_set"),
                    calibration=pod5.Calibration(seg["offset"], seg["scale"]),
                    read_number=seg["read_number"],
                    start_sample=seg["start"],
                    median_before=230.0,
                    end_reason=pod5.EndReason.from_reason_with_default_forced(
                        pod5.EndReasonEnum.SIGNAL_POSITIVE
                    ),
                    run_info=run,
                    signal=seg["signal"],
                )
            )
            truth.append(f">{seg['read_id']}\n{seg['truth']}\n")
    (OUT / "reads/lambda_truth.fasta").write_text("".join(truth))
    shutil.copy(SHARED / "lambda_r941/lambda.fasta", OUT / "reads/lambda.fasta")


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


if __name__ == "__main__":
    write_lambda()
    write_formats()
