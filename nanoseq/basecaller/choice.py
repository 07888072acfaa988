"""Which model calls a read. ``auto`` takes, per read, the bundled basecaller made for the
chemistry the read's file records; a model the user names must have been made for the reads'
chemistry (``any_chemistry`` calls them anyway). Reads of unknown chemistry go to the named
model, or the default one, with a warning; RNA is refused."""

from __future__ import annotations

import logging

from nanoseq.basecaller.model import Basecaller
from nanoseq.errors import InputError
from nanoseq.models import DEFAULT_BASECALLER, auto_basecallers
from nanoseq.signal.chemistry import UNKNOWN
from nanoseq.signal.readers import Read

log = logging.getLogger(__name__)

AUTO = "auto"


class ModelChoice:
    """``choose(read)`` -> the model that calls it (each loaded once)."""

    def __init__(self, model: Basecaller | str = AUTO, any_chemistry: bool = False):
        self.given = None if model == AUTO else model
        self.any_chemistry = any_chemistry
        self.loaded: dict[str, Basecaller] = {}
        self.warned: set[str] = set()
        self.by_chemistry = auto_basecallers() if self.given is None else {}

    def choose(self, read: Read) -> Basecaller:
        chemistry = read.chemistry
        if chemistry.startswith("rna"):
            raise InputError(f"RNA reads ({chemistry}) are not supported", read.filename)
        if self.given is not None:
            model = self._load(self.given)
            made_for = model.metadata["chemistry"]
            if chemistry not in (UNKNOWN, made_for) and not self.any_chemistry:
                raise InputError(
                    f"reads of {chemistry}, but the model was made for {made_for} "
                    "(--any-chemistry calls them anyway)",
                    read.filename,
                )
        elif chemistry in self.by_chemistry:
            return self._load(self.by_chemistry[chemistry])
        elif chemistry != UNKNOWN:
            known = ", ".join(f"{c} ({n})" for c, n in self.by_chemistry.items())
            raise InputError(
                f"no bundled model for {chemistry} reads (bundled: {known}); give one with --model",
                read.filename,
            )
        else:
            model = self._load(DEFAULT_BASECALLER)
        if chemistry == UNKNOWN and read.filename not in self.warned:
            self.warned.add(read.filename)
            log.warning(
                "%s: the file does not say its chemistry; calling it with a model made for %s",
                read.filename,
                model.metadata["chemistry"],
            )
        return model

    def _load(self, model: Basecaller | str) -> Basecaller:
        if isinstance(model, Basecaller):
            return model
        if model not in self.loaded:
            self.loaded[model] = Basecaller.from_preset(model)
        return self.loaded[model]
