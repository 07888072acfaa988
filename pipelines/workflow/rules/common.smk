# Input discovery and grouping: files sorted by path, cut into groups of `group_size`.

from pathlib import Path

SUFFIXES = (".pod5", ".fast5", ".slow5", ".blow5")
OUT = config["output"]


def signal_files():
    root = Path(config["reads"])
    if root.is_file():
        return [root]
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES)
    if not files:
        raise ValueError(f"{root}: no signal files ({', '.join(SUFFIXES)})")
    return files


def group_name(files):
    """A file's own name when jobs take one file each, else group0001, group0002, ..."""
    return files[0].stem if len(files) == 1 and config["group_size"] == 1 else None


FILES = signal_files()
GROUPS = {}
for number, start in enumerate(range(0, len(FILES), config["group_size"]), start=1):
    members = FILES[start : start + config["group_size"]]
    GROUPS[group_name(members) or f"group{number:04d}"] = [str(p) for p in members]
if len(GROUPS) * config["group_size"] < len(FILES) or len(set(GROUPS)) != len(GROUPS):
    raise ValueError("signal files with the same name: set group_size > 1")
