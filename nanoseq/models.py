"""Bundled pretrained models (``nanoseq/assets/<name>.keras`` with a ``<name>.md`` model card)
and loading a model by bundled name or by path."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from nanoseq.errors import InputError, one_line

ASSETS = Path(__file__).parent / "assets"
DEFAULT_BASECALLER = "dna_r941_lambda"
DEFAULT_BEAM_WIDTH = 5  # how `nanoseq basecall` decodes: a beam search (1 = greedy)
DEFAULT_LANGUAGE_MODEL = "char_tinyshakespeare"


def bundled() -> dict[str, Path]:
    """Name -> path of every bundled model."""
    return {path.stem: path for path in sorted(ASSETS.glob("*.keras"))}


def resolve(name_or_path: str) -> Path:
    """A bundled model's name or a ``.keras`` path -> the file."""
    models = bundled()
    if name_or_path in models:
        return models[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return path
    known = ", ".join(models) or "none"
    raise InputError(f"no such model file, nor a bundled model (bundled: {known})", name_or_path)


def saved_config(name_or_path: str) -> dict:
    """A saved model's constructor arguments, read without loading it (nor starting TensorFlow,
    which multi-worker training must configure first)."""
    path = resolve(name_or_path)
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))["config"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read the model's config ({one_line(error)})", path) from None


def load_model(name_or_path: str = DEFAULT_BASECALLER):
    """Load a bundled model by name, or any nanoseq ``.keras`` file, ready for inference."""
    import nanoseq
    from nanoseq.runtime import import_keras

    path = resolve(name_or_path)
    keras = import_keras()
    nanoseq.register_keras_objects()
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a bad file
        raise InputError(f"cannot load model ({one_line(error)})", path) from None
