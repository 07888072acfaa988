"""Every signal format reads right: read counts, lengths and pA checked against the file's own
numbers as the format's library (h5py, pod5, pyslow5) gives them."""

import h5py
import numpy as np
import pod5
import pyslow5
import pytest
import vbz_h5py_plugin  # noqa: F401

from nanoseq.errors import InputError
from nanoseq.signal.readers import Read, file_format, find_signal_files, read_file, read_signal


def fast5_truth(path):
    """read id -> (raw signal, pA) computed straight from the HDF5 datasets and attributes."""
    truth = {}
    with h5py.File(path) as f:
        if "Raw" in f:
            groups = [(f["Raw/Reads"][k], f["UniqueGlobalKey/channel_id"]) for k in f["Raw/Reads"]]
        else:
            groups = [(f[k]["Raw"], f[k]["channel_id"]) for k in f if k.startswith("read_")]
        for raw, channel in groups:
            rid = raw.attrs.get("read_id", path.stem)
            rid = rid.decode() if isinstance(rid, bytes) else str(rid)
            c = channel.attrs
            signal = raw["Signal"][()]
            truth[rid] = (signal, (signal + c["offset"]) * c["range"] / c["digitisation"])
    return truth


def pod5_truth(path):
    with pod5.Reader(path) as reader:
        return {str(r.read_id): (r.signal.copy(), r.signal_pa.copy()) for r in reader.reads()}


def slow5_truth(path):
    handle = pyslow5.Open(str(path), "r")
    raw = {r["read_id"]: r["signal"] for r in handle.seq_reads(pA=False)}
    handle.close()
    handle = pyslow5.Open(str(path), "r")
    pa = {r["read_id"]: r["signal"] for r in handle.seq_reads(pA=True)}
    handle.close()
    return {k: (raw[k], pa[k]) for k in raw}


TRUTH = {"fast5": fast5_truth, "pod5": pod5_truth, "slow5": slow5_truth, "blow5": slow5_truth}


def check_file(path, expected_reads):
    reads = list(read_file(path))
    truth = TRUTH[path.suffix[1:]](path)
    assert len(reads) == expected_reads == len(truth)
    # slow5 test files repeat read ids; compare in order where ids repeat
    for read in reads:
        raw, pa = truth[read.read_id]
        assert read.signal.dtype == np.int16
        assert read.num_samples == len(raw) > 0
        if len({r.read_id for r in reads}) == len(reads):
            np.testing.assert_array_equal(read.signal, raw)
            np.testing.assert_allclose(read.pa, pa, rtol=1e-5, atol=1e-3)
        assert read.sample_rate > 0 and read.digitisation > 0 and read.range > 0
        assert read.filename == path.name
    return reads


SHARED_FILES = {
    "formats/multi_gzip_r941.fast5": 10,
    "formats/multi_vbz.fast5": 4,
    "formats/single_read_v1.fast5": 1,
    "formats/single_read_multi_layout.fast5": 1,
    "formats/r1041_4khz.blow5": 8,
    "formats/r1041_single.pod5": 1,
    "lambda_r941/heldout.pod5": 21,
    "r1041_human/can_reads.pod5": 14,
}


@pytest.mark.parametrize("name,count", SHARED_FILES.items())
def test_shared_format_files(shared_nanopore, name, count):
    check_file(shared_nanopore / name, count)


def test_lambda_fast5_folder(shared_nanopore):
    folder = shared_nanopore / "lambda_r941/fast5"
    files = find_signal_files([folder])
    assert len(files) == 50
    for path in files:
        check_file(path, 1)


def test_heldout_totals(shared_nanopore):
    reads = list(read_signal([shared_nanopore / "lambda_r941/heldout.pod5"]))
    assert sum(r.num_samples for r in reads) == pytest.approx(1.45e6, rel=0.01)


@pytest.mark.parametrize(
    "name,count",
    {
        "formats/multi_vbz.fast5": 4,
        "formats/single_read_v1.fast5": 1,
        "formats/single_read_multi_layout.fast5": 1,
        "formats/r1041_4khz.blow5": 8,
        "formats/r1041_two_reads.slow5": 2,
        "formats/r1041_single.pod5": 1,
        "reads/lambda.pod5": 6,
    }.items(),
)
def test_sample_files(sample_dir, name, count):
    check_file(sample_dir / name, count)


def test_metadata_and_fields(sample_dir):
    (read,) = read_file(sample_dir / "formats/single_read_multi_layout.fast5")
    assert read.read_id == "59097f00-0f1c-4fac-aea2-3c23d79b0a58"
    assert read.sample_rate == 6024 and read.channel == 384 and read.mux == 1
    assert read.read_number == 50 and read.start_sample == 441804
    assert read.duration == pytest.approx(36511 / 6024)
    (v1,) = read_file(sample_dir / "formats/single_read_v1.fast5")
    assert v1.read_id == "single_read_v1"  # v1 files carry no read id: the file's name stands in
    assert v1.run_id == "904896" and v1.channel == 170
    (r10,) = read_file(sample_dir / "formats/r1041_single.pod5")
    assert r10.metadata["sequencing_kit"] == "sqk-lsk112"
    assert r10.metadata["flow_cell_product_code"] == "FLO-PRO112"
    assert r10.run_id == "a16f403b6a3655419511bf356ce3b40b65abfae4"
    assert (r10.channel, r10.mux) == (2647, 2)
    blow = list(read_file(sample_dir / "formats/r1041_4khz.blow5"))
    assert blow[0].metadata["sequencing_kit"] == "sqk-lsk114" and blow[0].channel == 281


def test_folder_is_recursive_and_filtered(sample_dir):
    reads = list(read_signal([sample_dir], read_ids={"r1", "002bd127-db82-436f-b828-28567c3d505d"}))
    assert sorted((r.format, r.read_id) for r in reads) == [
        ("blow5", "r1"),
        ("pod5", "002bd127-db82-436f-b828-28567c3d505d"),
        ("slow5", "r1"),
    ]


def test_streams_one_read_at_a_time(sample_dir):
    reads = read_signal([sample_dir / "reads/lambda.pod5"])
    first = next(reads)
    assert isinstance(first, Read) and first.num_samples > 20_000
    reads.close()


# --- bad input ---------------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="no such file or folder") as info:
        list(read_signal([tmp_path / "nope.pod5"]))
    assert str(tmp_path / "nope.pod5") in str(info.value)


def test_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="no signal files"):
        list(read_signal([tmp_path]))


def test_wrong_suffix(tmp_path):
    path = tmp_path / "reads.txt"
    path.write_text("ACGT")
    with pytest.raises(InputError, match="not a signal file"):
        list(read_signal([path]))


@pytest.mark.parametrize(
    "source,target,message",
    [
        ("formats/r1041_single.pod5", "x.fast5", r"not a fast5 file \(it looks like pod5\)"),
        ("formats/multi_vbz.fast5", "x.blow5", r"not a blow5 file \(it looks like fast5\)"),
        ("reads/lambda_truth.fasta", "x.pod5", r"not a pod5 file \(unrecognised content\)"),
    ],
)
def test_other_format_under_signal_suffix(sample_dir, tmp_path, source, target, message):
    path = tmp_path / target
    path.write_bytes((sample_dir / source).read_bytes())
    with pytest.raises(InputError, match=message):
        list(read_file(path))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pod5"
    path.touch()
    with pytest.raises(InputError, match="empty file"):
        list(read_file(path))


@pytest.mark.parametrize(
    "name", ["reads/lambda.pod5", "formats/multi_vbz.fast5", "formats/r1041_4khz.blow5"]
)
def test_truncated_file(sample_dir, tmp_path, name):
    data = (sample_dir / name).read_bytes()
    path = tmp_path / ("cut" + (sample_dir / name).suffix)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as info:
        list(read_file(path))
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_zero_sample_read_is_skipped_with_warning(tmp_path, caplog):
    path = tmp_path / "zero.fast5"
    with h5py.File(path, "w") as f:
        f.attrs["file_version"] = "2.2"
        for name, n in (("a", 0), ("b", 100)):
            group = f.create_group(f"read_{name}")
            raw = group.create_group("Raw")
            raw.attrs["read_id"] = name.encode()
            raw.create_dataset("Signal", data=np.arange(n, dtype=np.int16))
            channel = group.create_group("channel_id")
            for key, value in dict(
                channel_number=b"7",
                digitisation=8192.0,
                offset=4.0,
                range=1400.0,
                sampling_rate=4000.0,
            ).items():
                channel.attrs[key] = value
    reads = list(read_file(path))
    assert [r.read_id for r in reads] == ["b"]
    assert "read a has no samples" in caplog.text and str(path) in caplog.text


def test_file_format_checks_magic(sample_dir):
    assert file_format(sample_dir / "formats/r1041_two_reads.slow5") == "slow5"
    assert file_format(sample_dir / "formats/r1041_4khz.blow5") == "blow5"
