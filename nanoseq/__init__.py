"""nanoseq: deep sequence models for scientific data, as plain Keras 3 models.

Nanopore basecalling, language models and sequence to sequence. Every model is a Keras model
that saves to ``.keras`` and loads with ``keras.saving.load_model`` after ``import nanoseq``;
each is a backbone that reads the input sequence under a task (a basecaller's head, a language
model's softmax, a seq2seq decoder)::

    import nanoseq

    model = nanoseq.load_model("dna_r941_lambda")  # a bundled name or a .keras path
    for read, call in nanoseq.basecall(nanoseq.read_signal(["reads.pod5"]), model):
        print(read.read_id, call.sequence[:40], call.mean_qscore)

    scores = model(windows)  # (batch, frames, classes): the model is plain Keras
    calls = model.decode(scores)  # its head decodes them, as basecall does

    chunks = nanoseq.ChunkSet.load("chunks/")  # from `nanoseq prepare`
    nanoseq.train_basecaller(chunks, nanoseq.TrainingRun("run/", epochs=10), head="crf")

    hac = nanoseq.import_ont_model("dna_r10.4.1_e8.2_400bps_hac@v4.3.0")  # dorado's folder

``basecall`` decodes as ``nanoseq basecall`` does (a beam of 5); ``basecall_files`` is that
command's whole job (files in; FASTQ/SAM/BAM, summary and metrics out).

Importing nanoseq stays light (the CLI answers ``--help`` at once): the names below load on
first use, and nanoseq's Keras objects are registered as soon as Keras is imported.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.2.0"

# Modules that define registered Keras objects.
KERAS_MODULES = ("nanoseq.basecaller.model", "nanoseq.text.lm", "nanoseq.text.seq2seq")

_PUBLIC = {
    "load_model": "nanoseq.models",
    "read_signal": "nanoseq.signal.readers",
    "basecall": "nanoseq.basecaller.pipeline",
    "basecall_files": "nanoseq.basecaller.job",
    "Basecaller": "nanoseq.basecaller.model",
    "SignalBackbone": "nanoseq.basecaller.backbone",
    "SerialBackbone": "nanoseq.basecaller.serial",
    "import_ont_model": "nanoseq.basecaller.ont.importer",
    "CTCHead": "nanoseq.basecaller.ctc",
    "CRFHead": "nanoseq.basecaller.crf",
    "ChunkSet": "nanoseq.signal.labels",
    "SignalSettings": "nanoseq.signal.settings",
    "Normalisation": "nanoseq.signal.normalize",
    "TrainingRun": "nanoseq.training",
    "train_basecaller": "nanoseq.basecaller.train",
    "TextBackbone": "nanoseq.text.backbone",
    "LanguageModel": "nanoseq.text.lm",
    "Seq2Seq": "nanoseq.text.seq2seq",
    "Vocabulary": "nanoseq.text.vocab",
    "train_language_model": "nanoseq.text.lm_train",
    "train_seq2seq": "nanoseq.text.seq2seq_train",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'nanoseq' has no attribute {name!r}")


def __dir__():
    return [*__all__, "__version__"]


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
