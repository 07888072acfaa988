"""Makes the ONT model fixtures (run once; needs PyTorch and ont-bonito, which nanoseq does not):

    python tests/data/ont/make.py

Four small models of random weights, built by bonito's own PyTorch modules (``bonito.nn``) from
configs shaped as ONT's: an old-style R9.4.1 fast model and a v4.2 hac (clamps, split head) in
dorado's layout (one ``.tensor`` a weight, batch norm folded, clamps not counted), a v4.3 hac in
bonito's (``weights_1.tar``, batch norm not folded) and a v5-style transformer in dorado's.
Each folder gets ``reference.npz``: a signal ``x`` (batch, samples) and the model's move scores
``scores`` (batch, frames, 4 ** (state_len + 1)), as bonito computes them (no blank columns).
"""

import importlib.util
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import toml
import torch

HERE = Path(__file__).parent
SAMPLES = 600


def bonito_nn():
    """bonito.nn alone (the package's __init__ imports its whole CLI)."""
    spec = importlib.util.find_spec("bonito")
    package = types.ModuleType("bonito")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["bonito"] = package
    import bonito.nn

    return bonito.nn


nn = bonito_nn()


def conv(insize, size, winlen, stride=1, activation="swish", norm=None):
    return dict(
        type="convolution",
        insize=insize,
        size=size,
        winlen=winlen,
        stride=stride,
        padding=winlen // 2,
        bias=True,
        activation=activation,
        **({"norm": norm} if norm else {}),
    )


def lstms(size, n=5):
    return [
        dict(type="lstm", size=size, insize=size, bias=True, reverse=(n - i) % 2) for i in range(n)
    ]


def randomise(module, seed):
    """Batch norm statistics and LSTM state biases that are not the identity or zero."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
        if isinstance(m, torch.nn.LSTM):
            m.bias_hh_l0.data.copy_(torch.randn(m.bias_hh_l0.shape, generator=g) * 0.1)
        if isinstance(m, torch.nn.RMSNorm):
            m.eps = 1e-5  # dorado's
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)


def save_tensor(folder, name, tensor):
    """One weight as dorado keeps it: a TorchScript module holding parameter "0"."""
    module = torch.nn.Module()
    module.register_parameter("0", torch.nn.Parameter(tensor.detach().clone(), requires_grad=False))
    torch.jit.script(module).save(str(folder / f"{name}.tensor"))


def dorado_layout(encoder, folder):
    """As `bonito export` writes a model: batch norm folded, clamps not numbered."""
    encoder.apply(nn.fuse_bn_)
    clamps, rename = 0, {}
    for i, layer in enumerate(encoder):
        clamps += isinstance(layer, nn.Clamp)
        rename[str(i)] = str(i - clamps)
    for name, tensor in encoder.state_dict().items():
        first, _, rest = name.partition(".")
        if isinstance(encoder, nn.Serial) and not isinstance(encoder, nn.NamedSerial):
            name = f"{rename.get(first, first)}.{rest}"
        save_tensor(folder, name, tensor)


def make(name, config, encoder_config, layout, seed, crf_gain=1.0, samples=SAMPLES):
    folder = HERE / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    torch.manual_seed(seed)
    encoder = nn.from_dict(encoder_config)
    randomise(encoder, seed)
    for m in encoder.modules():
        if isinstance(m, nn.LinearCRFEncoder):
            m.expand_blanks = False  # the reference: move scores alone
            m.linear.weight.data *= crf_gain
    encoder.eval()
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(2, samples)).astype(np.float32))
    with torch.no_grad():
        scores = encoder(x[:, None, :])  # time-major (T, N, C)
    np.savez_compressed(
        folder / "reference.npz", x=x.numpy(), scores=scores.permute(1, 0, 2).numpy()
    )
    (folder / "config.toml").write_text(toml.dumps(config))
    if layout == "dorado":
        with torch.no_grad():
            dorado_layout(encoder, folder)
    else:
        torch.save(
            {f"encoder.{k}": v for k, v in encoder.state_dict().items()}, folder / "weights_1.tar"
        )
    print(name, tuple(scores.shape), len(list(folder.iterdir())), "files")


common = {
    "model": {"package": "bonito.crf"},
    "labels": {"labels": ["N", "A", "C", "G", "T"]},
    "input": {"features": 1},
}

# R9.4.1 fast, old style: [encoder] without a type (bonito's rnn_encoder)
old = dict(
    features=16,
    winlen=19,
    stride=5,
    scale=5.0,
    rnn_type="lstm",
    activation="swish",
    blank_score=2.0,
)
make(
    "dna_r9.4.1_e8_fast@v3.4",
    {
        **common,
        "encoder": old,
        "global_norm": {"state_len": 3},
        "qscore": {"scale": 0.94, "bias": -0.2},
        "run_info": {"sample_rate": 4000},
        "basecaller": {"chunksize": 4000, "overlap": 500},
    },
    {
        "type": "serial",
        "sublayers": [
            conv(1, 4, 5),
            conv(4, 16, 5),
            conv(16, 16, 19, 5),
            dict(type="permute", dims=[2, 0, 1]),
            *lstms(16),
            dict(
                type="linearcrfencoder",
                insize=16,
                n_base=4,
                state_len=3,
                bias=True,
                scale=5.0,
                activation="tanh",
                blank_score=2.0,
            ),
        ],
    },
    "dorado",
    seed=1,
)

# v4.2 hac: batch norm, clamps after the convolutions, a split head, the CRF clamped to +-5
clamp = dict(type="clamp", min=-0.5, max=3.5)
v42 = {
    "type": "serial",
    "sublayers": [
        conv(1, 8, 5, norm="batchnorm"),
        clamp,
        conv(8, 8, 5, norm="batchnorm"),
        clamp,
        conv(8, 16, 19, 6, norm="batchnorm"),
        clamp,
        dict(type="permute", dims=[2, 0, 1]),
        *lstms(16),
        dict(type="linear", in_features=16, out_features=8),
        dict(type="linearcrfencoder", insize=8, n_base=4, state_len=4, bias=False, blank_score=2.0),
        dict(type="clamp", min=-5.0, max=5.0),
    ],
}
make(
    "dna_r10.4.1_e8.2_400bps_hac@v4.2.0",
    {
        **common,
        "global_norm": {"state_len": 4},
        "encoder": v42,
        "run_info": {"sample_rate": 5000},
        "qscore": {"scale": 0.95, "bias": -0.2},
    },
    v42,
    "dorado",
    seed=2,
    crf_gain=20.0,
)

# v4.3 hac in bonito's layout: batch norm not folded, the last convolution tanh, pA scaling
v43 = {
    "type": "serial",
    "sublayers": [
        conv(1, 8, 5, norm="batchnorm"),
        conv(8, 8, 5, norm="batchnorm"),
        conv(8, 16, 19, 6, activation="tanh", norm="batchnorm"),
        dict(type="permute", dims=[2, 0, 1]),
        *lstms(16),
        dict(
            type="linearcrfencoder", insize=16, n_base=4, state_len=5, bias=False, blank_score=2.0
        ),
        dict(type="clamp", min=-5.0, max=5.0),
    ],
}
make(
    "dna_r10.4.1_e8.2_400bps_hac@v4.3.0",
    {
        **common,
        "global_norm": {"state_len": 5},
        "encoder": v43,
        "run_info": {"sample_rate": 5000},
        "scaling": {"strategy": "pa"},
        "standardisation": {"standardise": 1, "mean": 93.69, "stdev": 23.51},
        "qscore": {"scale": 1.05, "bias": -0.6},
    },
    v43,
    "bonito",
    seed=3,
    crf_gain=20.0,
    samples=240,
)

# v5-style transformer (small): five convolutions (stride 12), two encoder layers, x2 upsampling
layer = dict(
    type="transformerencoderlayer",
    d_model=16,
    nhead=2,
    dim_feedforward=32,
    deepnorm_alpha=2.0,
    deepnorm_beta=0.3,
    attn_window=[7, 8],
)
v5 = {
    "type": "namedserial",
    "conv": {
        "type": "serial",
        "sublayers": [
            conv(1, 4, 5, norm="batchnorm"),
            conv(4, 8, 5, norm="batchnorm"),
            conv(8, 8, 9, 3, norm="batchnorm"),
            conv(8, 16, 9, 2, norm="batchnorm"),
            conv(16, 16, 5, 2, norm="batchnorm"),
            dict(type="permute", dims=[0, 2, 1]),
        ],
    },
    "transformer_encoder": {"type": "stack", "depth": 2, "layer": layer},
    "upsample": {"type": "linearupsample", "d_model": 16, "scale_factor": 2},
    "crf": {
        "type": "linearcrfencoder",
        "insize": 16,
        "n_base": 4,
        "state_len": 3,
        "bias": False,
        "scale": 5.0,
        "blank_score": 2.0,
        "permute": [1, 0, 2],
    },
}
make(
    "dna_r10.4.1_e8.2_400bps_sup@v5.0.0",
    {
        "model": {
            "package": "bonito.crf",
            "type": "seqdistmodel",
            "encoder": v5,
            "seqdist": {"state_len": 3, "alphabet": ["N", "A", "C", "G", "T"]},
        },
        "run_info": {"sample_rate": 5000},
        "scaling": {"strategy": "pa"},
        "standardisation": {"standardise": 1, "mean": 93.64, "stdev": 22.6},
        "basecaller": {"chunksize": 12000, "overlap": 600},
    },
    v5,
    "dorado",
    seed=4,
)
