"""Attention maps: the weights of one translation as a heat map (target rows, source columns),
drawn with Matplotlib's non-interactive Agg backend, PNG or SVG (:func:`nanoseq.plots.save`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from nanoseq.plots import save


def plot_attention(
    source_tokens: list[str],
    target_tokens: list[str],
    weights: np.ndarray,
    path: str | Path,
    title: str = "",
) -> None:
    """Save ``weights`` ``(len(target_tokens), len(source_tokens))`` as a labelled picture."""
    from matplotlib.figure import Figure

    rows, columns = len(target_tokens), len(source_tokens)
    figure = Figure(figsize=(max(3.0, 0.4 * columns + 1.5), max(3.0, 0.4 * rows + 1.2)))
    axes = figure.add_subplot()
    image = axes.imshow(weights[:rows, :columns], cmap="viridis", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(columns), source_tokens, rotation=90)
    axes.set_yticks(range(rows), target_tokens)
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    axes.set_title(textwrap.shorten(title, 80), fontsize="small")
    save(figure, path)
