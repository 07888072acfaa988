"""Basecalling benchmark: accuracy and speed of a model on real held-out reads. One JSON line.

    python bench/basecall.py [--model NAME|PATH] [--reads heldout.pod5] [--threads 2]
                             [--beside NAME|PATH]

Defaults: the bundled model on ../shared/data/nanopore/lambda_r941/heldout.pod5, scored against
lambda.fasta with `nanoseq evaluate`'s code (mappy map-ont, median identity, unmapped = 0), on
the backend `nanoseq basecall` chooses (`backend`: KERAS_BACKEND if set, else JAX where it is
installed and can use the machine).
Speed is end to end (read pod5 -> normalise -> windows -> model -> decode -> write FASTQ) after a
warm-up pass that compiles every batch shape the timed passes use, greedy and beam (a CRF
model's greedy call is its best path, its beam search runs in the compiled model), with
`batch_size` windows a call and `streams` calls at once as basecall makes them on this machine;
the baseline measured in the same run is the model alone on the same windows, the same way, so
`model_share` is the share of end-to-end time the model itself takes. Greedy runs again with
--workers reader/decoder
threads: `model_busy_share` is the share of the run's wall time the model was computing, with 1
worker and with --workers. Greedy also runs over the input streamed four times
(`greedy_4x_samples_per_s`): 21 reads fill only a couple of batches, the last one partly
padding, so the longer stream is nearer to the steady state of a whole run. Memory is that of
one run as `nanoseq basecall` makes it (beam --beam-width, a fresh process): peak RSS after the
input once and after it four times over (flat = bounded); `peak_rss_mb_all_passes` is this
process's, which holds the compiled model of both widths and every batch shape at once.
Calibration, per pass: `read_qscore_error` (the mean absolute gap between each mapped read's mean
qscore and -10 log10(1 - its identity)) and, of the `quality_bins` of at least 1,000 bases,
`worst_quality_bin_gap` (the largest gap between the Q reported and the Q measured), those more
than 2 Q apart and those whose Q lies outside the measured Q's 95 % interval;
`chance_calibrated_bins_within_2q`: the chance that bins of these sizes whose every base is wrong
exactly as often as its Q says would all measure within 2 Q (sparse bins near the top often miss).
`start_to_first_read`: a fresh process, from its start to its first read called, as the command
line starts (its compile cache on, in a folder of this run), the first read called alone (in a
stream it would wait for a whole batch): `cold` with the cache empty, `warm` run again, for each
installed backend (`tensorflow`, `jax`). The anchor,
deepnano-blitz (w96, beam 5, the same threads; ../shared/anchors), runs on the same reads in the
same run where it builds (`anchor.why` says why not), scored the same way; its samples/s are
of its whole process, start-up included, and `end_to_end_over_anchor` is nanoseq's beam-5
samples/s over its. `--beside MODEL` (e.g. one `nanoseq import` made of an ONT model) runs
greedy and beam through the same passes in the same run: `beside.*_speed_over_model`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "nanopore" / "lambda_r941"


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM where there is one: ru_maxrss would count the RSS of the
    parent that forked a child (the memory run) before its exec."""
    try:
        with open("/proc/self/status") as status:
            line = next(row for row in status if row.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def streamed(path: str, times: int):
    """The reads of ``path``, ``times`` over."""
    from nanoseq.signal.readers import read_signal

    return itertools.chain.from_iterable(read_signal([path]) for _ in range(times))


def memory_run(args, model) -> None:
    """Peak RSS of one basecalling run as `nanoseq basecall` makes it (its default beam width),
    after the input once and after it four times over."""
    from nanoseq.basecaller.pipeline import basecall

    def run(times: int) -> None:
        stream = streamed(args.reads, times)
        for _ in basecall(stream, model, args.beam_width, args.batch_size):
            pass

    run(1)
    once = peak_rss_mb()
    run(4)
    print(
        json.dumps(
            {
                "peak_rss_mb": round(peak_rss_mb()),
                "rss_growth_4x_input_mb": round(peak_rss_mb() - once),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--reads", default=str(SHARED / "heldout.pod5"))
    parser.add_argument("--reference", default=str(SHARED / "lambda.fasta"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, help="Default: basecall's.")
    parser.add_argument("--beam-width", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="Reader/decoder threads.")
    parser.add_argument("--beside", help="Another model to time on the same reads, same run.")
    parser.add_argument("--memory-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from nanoseq.runtime import prefer_jax, set_threads

    backend = prefer_jax()  # as `nanoseq basecall` chooses, before anything imports Keras

    from nanoseq.basecaller.model import Basecaller
    from nanoseq.basecaller.pipeline import Runner, Windows, basecall, batching, prepare
    from nanoseq.models import DEFAULT_BASECALLER
    from nanoseq.signal.readers import read_signal

    set_threads(args.threads)
    name = args.model or DEFAULT_BASECALLER
    model = Basecaller.from_preset(name)
    size, streams = batching(model, args.batch_size)  # as basecall's: None = the model's
    if args.memory_run:
        return memory_run(args, model)
    reads = list(read_signal([args.reads]))
    samples = sum(r.num_samples for r in reads)
    warm_up(args, model, reads)

    result = {"benchmark": "basecall", "model": name, "head": model.head.kind, "backend": backend}
    result.update(reads=len(reads), samples=samples, batch_size=size, streams=streams)
    work = Path(tempfile.mkdtemp())
    runs = [("greedy", 1, 1), ("beam", args.beam_width, 1), ("greedy_workers", 1, args.workers)]
    for label, width, workers in runs:
        result[label] = timed_run(args, model, samples, width, workers, work / label)
    if "beam" in result:
        result["beam_over_greedy_time"] = round(
            result["beam"]["seconds"] / result["greedy"]["seconds"], 3
        )

    # baseline in the same run: the model alone on the same windows
    cut = Windows.of(model)
    windows = [window for read in reads for window in prepare(read, model, cut).windows]
    runner = Runner(model, size, cut.size, streams=streams)
    start = time.perf_counter()
    for _ in runner.map(windows[i : i + size] for i in range(0, len(windows), size)):
        pass
    model_seconds = time.perf_counter() - start
    result["model_only_samples_per_s"] = round(samples / model_seconds)
    result["model_share"] = round(model_seconds / result["greedy"]["seconds"], 3)

    start = time.perf_counter()
    for _ in basecall(streamed(args.reads, 4), model, 1, args.batch_size):
        pass
    result["greedy_4x_samples_per_s"] = round(4 * samples / (time.perf_counter() - start))
    result["peak_rss_mb_all_passes"] = round(peak_rss_mb())
    run = [sys.executable, __file__, "--memory-run", "--model", name, "--reads", args.reads]
    run += ["--threads", str(args.threads)]
    run += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    run += ["--beam-width", str(args.beam_width)]
    result.update(json.loads(subprocess.run(run, capture_output=True, check=True).stdout))
    result["threads"] = args.threads
    result["start_to_first_read"] = first_read_seconds(args, work)
    if args.beside:
        result["beside"] = beside(args, reads, samples, result, work)
    result["anchor"] = anchor(args, work)
    if "samples_per_s" in result["anchor"]:
        result["end_to_end_over_anchor"] = round(
            result["beam"]["samples_per_s"] / result["anchor"]["samples_per_s"], 3
        )
    print(json.dumps(result), flush=True)


def warm_up(args, model, reads) -> None:
    """Call ``reads`` greedy and with the beam: every batch shape the timed passes use compiled."""
    from nanoseq.basecaller.pipeline import basecall

    for width in (1, args.beam_width):
        list(basecall(reads, model, width, args.batch_size))


def timed_run(args, model, samples: int, width: int, workers: int, out: Path) -> dict:
    """One end-to-end pass over ``args.reads`` (FASTQ written), timed and scored."""
    from nanoseq.basecaller.evaluate import evaluate_calls
    from nanoseq.basecaller.pipeline import basecall
    from nanoseq.io import CallsWriter
    from nanoseq.signal.readers import read_signal

    timing: dict = {}
    start = time.perf_counter()
    bases = 0
    fastq = out.with_suffix(".fastq")
    with CallsWriter(fastq) as writer:
        for read, call in basecall(
            read_signal([args.reads]), model, width, args.batch_size, workers=workers, timing=timing
        ):
            writer.write(read, call)
            bases += len(call.sequence)
    seconds = time.perf_counter() - start
    metrics = evaluate_calls(
        fastq, args.reference, out.with_suffix(".json"), out.with_suffix(".tsv")
    )
    return {
        "beam_width": width,
        "workers": workers,
        "model_busy_share": round(timing["model_seconds"] / seconds, 3),
        "seconds": round(seconds, 3),
        "samples_per_s": round(samples / seconds),
        "bases_per_s": round(bases / seconds),
        "median_identity": round(metrics["median_identity"], 4),
        "mean_identity": round(metrics["mean_identity"], 4),
        "mapped_fraction": round(metrics["mapped_fraction"], 4),
        **calibration(metrics),
    }


def calibration(metrics: dict) -> dict:
    """How far qualities are from what they measure: each read's mean qscore against
    -10 log10(1 - identity) (the mean absolute gap); of the quality bins of at least 1,000
    bases, the largest gap between the Q reported and the Q measured, the bins more than 2 Q
    apart, and the bins whose reported Q lies outside the measured Q's 95 % interval (few
    errors measure a Q loosely: two in 1,500 bases allow Q23.2 to Q37.9), and the chance that
    bins of these sizes, each exactly calibrated, would all measure within 2 Q."""
    from nanoseq.metrics import chance_measured_within

    bins = [b for b in metrics["calibration"] if b["bases"] >= 1000]
    gaps = [abs(b["measured_q"] - b["q"]) for b in bins]
    outside = [
        b for b in bins if not b["measured_q_interval"][0] <= b["q"] <= b["measured_q_interval"][1]
    ]
    read_gap = metrics["read_qscore_error"]  # None with no read mapped
    return {
        "read_qscore_error": None if read_gap is None else round(read_gap, 3),
        "worst_quality_bin_gap": round(max(gaps), 3) if gaps else None,
        "quality_bins": len(bins),
        "quality_bins_over_2q": [b["q"] for b, gap in zip(bins, gaps, strict=True) if gap > 2],
        "quality_bins_outside_95": [b["q"] for b in outside],
        "chance_calibrated_bins_within_2q": round(
            math.prod(chance_measured_within(b["q"], b["bases"]) for b in bins), 3
        ),
    }


def beside(args, reads, samples: int, result: dict, work: Path) -> dict:
    """Another model (``--beside``, e.g. one `nanoseq import` made) through the same passes,
    greedy and beam, in the same run; its speed over this one's."""
    from nanoseq.basecaller.model import Basecaller

    other = Basecaller.from_preset(args.beside)
    warm_up(args, other, reads)
    found = {"model": args.beside, "parameters": other.count_params()}
    for label, width in (("greedy", 1), ("beam", args.beam_width)):
        found[label] = timed_run(args, other, samples, width, 1, work / f"beside_{label}")
        found[f"{label}_speed_over_model"] = round(
            found[label]["samples_per_s"] / result[label]["samples_per_s"], 3
        )
    return found


def first_read_seconds(args, work: Path) -> dict:
    """Seconds from a fresh process's start to its first read called (imports, loading and
    compiling included), as `nanoseq basecall` starts, its compile cache empty and again: the
    start-up a per-file job pays, per backend. The first read is called alone: in a stream it
    waits for its batch to fill (320 windows, seconds of compute on 2 cores), which is the
    run's throughput, not its start-up."""
    import importlib.util

    code = (
        "import time; t = time.perf_counter()\n"
        "from nanoseq.runtime import persist_compilations, skip_optional_imports\n"
        "persist_compilations(); skip_optional_imports()  # as the command line starts\n"
        "from nanoseq.basecaller.pipeline import basecall\n"
        "from nanoseq.signal.readers import read_signal\n"
        f"first = next(iter(read_signal([{args.reads!r}])))\n"
        f"next(basecall([first], {args.model or 'auto'!r}))\n"
        "print(time.perf_counter() - t)\n"
    )
    found = {}
    for backend in ("tensorflow", "jax"):
        if not importlib.util.find_spec(backend):
            continue
        env = {**os.environ, "KERAS_BACKEND": backend, "NANOSEQ_CACHE": str(work / "cache")}
        for label in ("cold", "warm"):
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
            )
            found[f"{backend}_{label}_s"] = round(float(out.stdout.split()[-1]), 2)
    return found


def anchor(args, work: Path) -> dict:
    """deepnano-blitz (w96, beam 5) on the same reads and threads, scored the same way; or why
    it did not run (its build needs rustc and pip)."""
    from nanoseq.basecaller.evaluate import evaluate_calls

    script = ROOT.parent / "shared" / "anchors" / "deepnano-blitz" / "run.sh"
    if not script.exists():
        return {"ran": False, "why": f"no {script}"}
    out = work / "anchor.fastq"
    command = ["bash", str(script), args.reads, str(out), "96", "5", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"ran": False, "why": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    metrics = evaluate_calls(out, args.reference, work / "anchor.json", work / "anchor.tsv")
    figures["median_identity"] = round(metrics["median_identity"], 4)
    figures["mapped_fraction"] = round(metrics["mapped_fraction"], 4)
    return {"ran": True, **figures}


if __name__ == "__main__":
    sys.exit(main())
