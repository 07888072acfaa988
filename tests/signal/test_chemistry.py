"""A read's chemistry from what its file records, on one file of each kind."""

import pytest

from nanoseq.signal.chemistry import R941, R1041, R1041_260, UNKNOWN, chemistry
from nanoseq.signal.readers import read_signal

SAMPLE = {
    "reads/lambda.pod5": R941,
    "labelled/tombo_lambda.fast5": R941,
    "formats/multi_vbz.fast5": UNKNOWN,  # FLO-MIN1101 with dna_r101 (R10.1, not supported)
    "formats/r1041_4khz.blow5": R1041,  # only the kit says: SQK-LSK114
    "formats/r1041_two_reads.slow5": R1041,
    "formats/r1041_single.pod5": R1041_260,  # dna_r10.4.1_e8.2 with kit 12
    "formats/single_read_multi_layout.fast5": UNKNOWN,
    "formats/single_read_v1.fast5": UNKNOWN,
}
SHARED = {
    "lambda_r941/heldout.pod5": R941,
    "formats/multi_gzip_r941.fast5": R941,  # FLO-PRO002
    "formats/r1041_5khz.pod5": R1041,
    "r1041_human/can_reads.pod5": R1041,
}


@pytest.mark.parametrize("name", SAMPLE)
def test_sample_files(sample_dir, name):
    assert {read.chemistry for read in read_signal([sample_dir / name])} == {SAMPLE[name]}


@pytest.mark.parametrize("name", SHARED)
def test_shared_files(shared_nanopore, name):
    assert {read.chemistry for read in read_signal([shared_nanopore / name])} == {SHARED[name]}


def test_rules():
    assert chemistry({"sequencing_kit": "SQK-RNA004"}) == "rna004"
    assert chemistry({"basecall_config_filename": "rna_r9.4.1_70bps_hac.cfg"}) == "rna002"
    assert chemistry({"exp_script_name": "x:FLO-MIN114:SQK-NBD114-24"}) == R1041
    assert chemistry({"flow_cell_product_code": "FLO-MIN106"}) == R941
    assert chemistry({"basecall_config_filename": "dna_r10.4.1_e8.2_260bps_hac.cfg"}) == R1041_260
