"""deepnano-blitz's published R9.4.1 networks (Boža, Perešíni, Brejová and Vinař 2020, MIT) as
nanoseq basecallers.

A network file (``rnn48.txt`` to ``rnn96.txt``, by its width) is text, an array a pair of lines
(its shape, then its values row by row): a convolution of 33 samples over the med/MAD-normalised
signal clipped to +-2.5 and its square, max-pooled by 3, tanh; four GRUs of the width, the
second and fourth reading back to front (each GRU's twelve arrays: input, state and bias arrays
of its candidate, then of its reset and update gates); a linear map to the 5 CTC scores, the
blank first. Its GRU is Keras's with the reset gate after the recurrent product, so the import
is a :class:`~nanoseq.basecaller.serial.SerialBackbone` under nanoseq's CTC head, the same
weights in Keras's layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nanoseq.basecaller.ctc import CTCHead
from nanoseq.basecaller.model import Basecaller
from nanoseq.basecaller.serial import SerialBackbone
from nanoseq.errors import InputError
from nanoseq.signal.chemistry import R941
from nanoseq.signal.normalize import Normalisation
from nanoseq.signal.settings import SignalSettings

WINDOW, FEATURES, POOL, CLIP = 33, 2, 3, 2.5
GRUS, GRU_ARRAYS = 4, 12  # each GRU's arrays, in the file's order: see unpacking below
ARRAYS = 2 + GRUS * GRU_ARRAYS + 2  # the convolution's, the GRUs', the CTC map's
# windows a batch: the convolution's output before pooling (the width's features a sample) is
# large; w96 basecalling heldout.pod5 peaks at 1.55 GB at 160, 2.18 GB at nanoseq's usual 320
# (bench/basecall.py's memory run, stop 33)
BATCH = 160


def blitz_layers(width: int) -> list[dict]:
    """The network of ``width`` units in :class:`SerialBackbone`'s vocabulary."""
    gru = {"type": "gru", "size": width}
    return [
        {"type": "clamp", "min": -CLIP, "max": CLIP},
        {"type": "squares"},
        {"type": "convolution", "size": width, "winlen": WINDOW, "padding": WINDOW // 2},
        {"type": "maxpool", "size": POOL},
        {"type": "tanh"},
        *([gru, {**gru, "reverse": True}] * (GRUS // 2)),
    ]


def read_arrays(path: Path) -> list[np.ndarray]:
    """The file's arrays, in order."""
    lines = path.read_text().splitlines()
    if len(lines) % 2:
        raise InputError(f"{path}: an odd number of lines (an array is a shape and its values)")
    arrays = []
    for shape_line, values_line in zip(lines[::2], lines[1::2], strict=True):
        try:
            shape = [int(n) for n in shape_line.split()]
            values = np.array(values_line.split(), dtype=np.float32)
            arrays.append(values.reshape(shape))
        except ValueError as error:
            raise InputError(f"{path}: not a deepnano-blitz network ({error})") from None
    return arrays


def import_blitz_network(path) -> Basecaller:
    """The network in ``path`` as a basecaller of R9.4.1 reads at 4 kHz (med/MAD)."""
    path = Path(path)
    arrays = read_arrays(path)
    if len(arrays) != ARRAYS or arrays[0].ndim != 2:
        raise InputError(f"{path}: {len(arrays)} arrays, not deepnano-blitz's {ARRAYS}")
    width = arrays[0].shape[1]
    kernel, bias = arrays[0].reshape(WINDOW, FEATURES, width), arrays[1]
    weights = [kernel, bias]
    for start in range(2, 2 + GRUS * GRU_ARRAYS, GRU_ARRAYS):
        gru = arrays[start : start + GRU_ARRAYS]
        wio, woo, bio, boo, wir, wiu, wor, wou, bir, bor, biu, bou = gru
        weights += [  # Keras's gate order: update, reset, candidate
            np.concatenate([wiu, wir, wio], axis=1),
            np.concatenate([wou, wor, woo], axis=1),
            np.stack([np.concatenate([biu, bir, bio]), np.concatenate([bou, bor, boo])]),
        ]
    settings = SignalSettings(R941, 4000.0, Normalisation("med_mad"))  # as its own caller
    metadata = {
        **settings.to_metadata(),
        "name": f"deepnano-blitz {path.stem}",
        "imported_from": "deepnano-blitz",
        "batch_size": BATCH,
    }
    model = Basecaller(SerialBackbone(blitz_layers(width)), CTCHead(), 1, metadata)
    try:
        model.backbone.set_weights(weights)
        model.get_layer("head").set_weights(arrays[-2:])
    except ValueError as error:
        raise InputError(f"{path}: its arrays do not fit a network of {width} ({error})") from None
    return model
