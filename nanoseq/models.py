"""Models by name: the bundled ones (``nanoseq/assets/<name>.keras`` with a ``<name>.md`` model
card), their families, and loading a model by bundled name or path, refusing one of the wrong
family before anything heavy starts.

Every model a user loads is a :class:`Task` (keras-hub's split): a backbone that reads the input
sequence (:class:`~nanoseq.basecaller.backbone.SignalBackbone`,
:class:`~nanoseq.text.backbone.TextBackbone`) with what its family adds on top (a basecaller
head, a language model's softmax, a seq2seq decoder).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import ClassVar

from nanoseq.errors import InputError, one_line

ASSETS = Path(__file__).parent / "assets"
DEFAULT_BASECALLER = "dna_r941_blitz96_lambda"
DEFAULT_BEAM_WIDTH = 5  # how nanoseq basecalls (CLI and library): a beam search (1 = greedy)
DEFAULT_LANGUAGE_MODEL = "char_tinyshakespeare"

# The family of each task class, by the class name a saved model's config records.
FAMILIES = {
    "Basecaller": "basecaller",
    "LanguageModel": "language model",
    "Seq2Seq": "seq2seq model",
}


class Task:
    """What the models users load share (mixed into Keras models): a family, ``from_preset``,
    and ``from_config`` rebuilding the Keras objects of its config (the ``nested`` entries: a
    backbone, a head) before the model."""

    family: ClassVar[str]
    nested: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.family = FAMILIES[cls.__name__]

    @classmethod
    def from_preset(cls, name_or_path: str):
        """A bundled model's name or a ``.keras`` path -> the model, ready for inference; a
        model of another family is refused with one line."""
        return load_model(name_or_path, cls.family)

    @classmethod
    def from_config(cls, config: dict):
        import keras

        config = dict(config)
        for key in cls.nested:
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def saved_class(path: Path) -> str:
    """The class name a saved model's config records."""
    return _saved(path)["class_name"]


def saved_config(name_or_path: str, family: str | None = None) -> dict:
    """A saved model's constructor arguments, read without loading it (nor starting TensorFlow,
    which multi-worker training must configure first); with ``family``, refused if another."""
    return _saved(of_family(name_or_path, family))["config"]


def _saved(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(
            f"cannot load model: not a .keras file ({one_line(error)})", path
        ) from None


def family_of(path: Path) -> str | None:
    """The family of a saved model (None: not a nanoseq task)."""
    return FAMILIES.get(saved_class(path))


def bundled(family: str | None = None) -> dict[str, Path]:
    """Name -> path of every bundled model (of ``family``, when given)."""
    models = {path.stem: path for path in sorted(ASSETS.glob("*.keras"))}
    return {name: p for name, p in models.items() if family in (None, family_of(p))}


def auto_basecallers() -> dict[str, str]:
    """Chemistry -> the bundled basecaller ``--model auto`` picks for its reads: the default
    for its own chemistry, else the first made for it by name (read from saved metadata)."""
    chemistries = {
        name: saved_config(name)["metadata"]["chemistry"] for name in bundled("basecaller")
    }
    chosen: dict[str, str] = {}
    for name in sorted(chemistries, key=lambda name: name != DEFAULT_BASECALLER):
        chosen.setdefault(chemistries[name], name)
    return chosen


def resolve(name_or_path: str, family: str | None = None) -> Path:
    """A bundled model's name or a ``.keras`` path -> the file."""
    models = bundled()
    if name_or_path in models:
        return models[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return path
    kind = f"bundled {family}" if family else "bundled model"
    known = ", ".join(bundled(family)) or "none"
    raise InputError(f"no such model file, nor a {kind} ({known})", name_or_path)


def of_family(name_or_path: str, family: str | None = None) -> Path:
    """The file of a model, refused in one line if it is not of ``family`` (when given)."""
    path = resolve(name_or_path, family)
    found = family_of(path)
    if family and found != family:
        others = ", ".join(bundled(family)) or "none"
        what = f"a {found}" if found else "not a nanoseq model"
        raise InputError(f"is {what}; this needs a {family} (bundled: {others})", name_or_path)
    return path


def load_model(name_or_path: str = DEFAULT_BASECALLER, family: str | None = None):
    """Load a bundled model by name, or any nanoseq ``.keras`` file, ready for inference. With
    ``family`` (``basecaller``, ``language model``, ``seq2seq model``), a model of another is
    refused before it is loaded."""
    import nanoseq
    from nanoseq.runtime import import_keras, initializers_skipped, tensorflow_unasked

    path = of_family(name_or_path, family)
    keras = import_keras()
    nanoseq.register_keras_objects()
    try:
        with tensorflow_unasked(), initializers_skipped():
            return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a bad file
        raise InputError(f"cannot load model ({one_line(error)})", path) from None
