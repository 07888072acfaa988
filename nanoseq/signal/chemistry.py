"""A read's chemistry from what its file records: the basecall configuration a run named
(pod5 run info, fast5 context tags), the flow cell's product code and the sequencing kit (also
found inside MinKNOW's script name). Names follow ONT's models: ``dna_r9.4.1_e8``,
``dna_r10.4.1_e8.2_400bps``, ``dna_r10.4.1_e8.2_260bps``, ``rna002``, ``rna004``; ``unknown``
when nothing says."""

from __future__ import annotations

import re

UNKNOWN = "unknown"
R941 = "dna_r9.4.1_e8"
R1041 = "dna_r10.4.1_e8.2_400bps"
R1041_260 = "dna_r10.4.1_e8.2_260bps"

# Flow cell product codes by pore (FLO-FLG001 is a Flongle R9.4.1, FLO-PRO002 a PromethION one).
FLOW_CELLS = {
    "r9.4.1": ("FLO-MIN106", "FLO-MIN107", "FLO-FLG001", "FLO-PRO002", "FLO-PRO001"),
    "r10.4.1": ("FLO-MIN114", "FLO-FLG114", "FLO-PRO114", "FLO-PRO114M", "FLO-PRO114HD"),
    "r10.4.1_kit12": ("FLO-MIN112", "FLO-FLG112", "FLO-PRO112"),
}
_CONFIG = re.compile(
    r"(dna_r9\.4\.1|dna_r10\.4\.1_e8\.2(?:_(?:260|400)bps)?|rna_r9\.4\.1|rna00[24])"
)
_KIT = re.compile(r"SQK-([A-Z]+)(\d{3})", re.IGNORECASE)
_FLOW_CELL = re.compile(r"FLO-[A-Z]+\d+[A-Z]*", re.IGNORECASE)


def chemistry(metadata: dict) -> str:
    """The chemistry a read's run-level ``metadata`` (see :class:`~nanoseq.signal.readers.Read`)
    names, or :data:`UNKNOWN`."""
    config = _CONFIG.search(str(metadata.get("basecall_config_filename", "")).lower())
    kit = _kit(metadata)
    if config:
        name = config.group(1)
        if name == "dna_r9.4.1":
            return R941
        if name == "dna_r10.4.1_e8.2":  # the speed is in the kit: 260 bps with kit 12
            return R1041_260 if kit and kit[1] == "112" else R1041
        return "rna002" if name == "rna_r9.4.1" else name
    if kit and kit[0] == "RNA":
        return f"rna{kit[1]}"
    flow_cell = _flow_cell(metadata)
    if flow_cell in FLOW_CELLS["r10.4.1"] or (kit and kit[1] == "114"):
        return R1041
    if flow_cell in FLOW_CELLS["r10.4.1_kit12"]:
        return R1041_260
    if flow_cell in FLOW_CELLS["r9.4.1"]:
        return R941
    return UNKNOWN


def _kit(metadata: dict) -> tuple[str, str] | None:
    """The sequencing kit's kind and number (``("LSK", "114")``), from the kit or the script."""
    for key in ("sequencing_kit", "exp_script_name"):
        found = _KIT.search(str(metadata.get(key, "")))
        if found:
            return found.group(1).upper(), found.group(2)
    return None


def _flow_cell(metadata: dict) -> str | None:
    for key in ("flow_cell_product_code", "exp_script_name"):
        found = _FLOW_CELL.search(str(metadata.get(key, "")))
        if found:
            return found.group(0).upper()
    return None
