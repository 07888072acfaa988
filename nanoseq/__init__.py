"""nanoseq: deep sequence models for scientific data.

Nanopore basecalling (``nanoseq.basecaller``), language models and sequence to sequence
(``nanoseq.text``) as plain Keras models, and the signal readers they stand on
(``nanoseq.signal``).

Importing nanoseq stays light (the CLI answers ``--help`` at once), yet registers every custom
Keras object so ``keras.saving.load_model`` works: at once if Keras is already imported, else
right after Keras is first imported. Public names load on first use.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# Modules that define registered Keras objects.
KERAS_MODULES = ("nanoseq.basecaller.model", "nanoseq.text.lm", "nanoseq.text.seq2seq")

_PUBLIC = {
    "Basecaller": "nanoseq.basecaller.model",
    "LanguageModel": "nanoseq.text.lm",
    "Seq2Seq": "nanoseq.text.seq2seq",
    "Vocabulary": "nanoseq.text.vocab",
    "load_model": "nanoseq.models",
    "read_signal": "nanoseq.signal.readers",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'nanoseq' has no attribute {name!r}")


def register_keras_objects() -> None:
    """Import every module that registers Keras objects."""
    for module in KERAS_MODULES:
        importlib.import_module(module)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Registers nanoseq's Keras objects as soon as ``keras`` itself has been imported."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            register_keras_objects()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    register_keras_objects()
else:
    sys.meta_path.insert(0, _AfterKerasImport())
