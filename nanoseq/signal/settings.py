"""How reads become model input, carried from the data to the model to the call (remora's
``DatasetMetadata``): a chunk set records the settings its signal was made with beside its
arrays (``settings.json``), training copies them into the model's metadata, and basecalling
prepares each read by the model's."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from nanoseq.signal.chemistry import R941
from nanoseq.signal.normalize import Normalisation


@dataclass(frozen=True)
class SignalSettings:
    """The chemistry and sample rate (Hz) of the reads, and how their signal was normalised."""

    chemistry: str = R941
    sample_rate: float = 4000.0
    normalisation: Normalisation = field(default_factory=Normalisation)

    def __str__(self) -> str:
        return f"{self.chemistry} at {self.sample_rate:g} Hz, {self.normalisation.method}"

    def to_metadata(self) -> dict:
        """As a model's metadata and ``settings.json`` keep them (plain JSON values)."""
        return {
            "chemistry": self.chemistry,
            "sample_rate": float(self.sample_rate),
            "normalisation": self.normalisation.to_dict(),
        }

    @classmethod
    def from_metadata(cls, metadata: dict) -> SignalSettings:
        """The settings in a model's metadata or a ``settings.json`` (other keys ignored)."""
        known = {f.name: metadata[f.name] for f in fields(cls) if f.name in metadata}
        if "normalisation" in known:
            known["normalisation"] = Normalisation.from_dict(known["normalisation"])
        return cls(**known)

    def differences(self, other: SignalSettings) -> list[str]:
        """``name mine vs other's`` for each setting that differs."""
        mine, theirs = self.to_metadata(), other.to_metadata()
        return [f"{key} {mine[key]} vs {theirs[key]}" for key in mine if mine[key] != theirs[key]]
