"""The PyTorch reference of `bench/lm.py side-by-side` (run by it, in its own process, so that
neither framework's threads disturb the other's): the same character model, batches, learning
rates and clip, trained then run forward. Prints one JSON line.

    python bench/lm_torch.py WORK CELL UNITS VOCAB THREADS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

WARMUP_STEPS = 20  # steps left out of steady-state figures (compiling, first allocations)


def steady_rate(times: list[float]) -> float:
    """Steps a second after the first :data:`WARMUP_STEPS`, from each step's end time."""
    return (len(times) - WARMUP_STEPS) / (times[-1] - times[WARMUP_STEPS - 1])


def main(work: str, cell: str, units: str, vocab: str, threads: str) -> None:
    """PyTorch's side: the same model, batches, schedule and clip (prints one JSON line)."""
    import numpy as np
    import torch

    torch.set_num_threads(int(threads))
    torch.manual_seed(1)
    work, units, vocab = Path(work), int(units), int(vocab)
    x, y = (torch.from_numpy(np.load(work / f"{n}.npy")).long() for n in ("x", "y"))
    rates = json.loads((work / "rates.json").read_text())
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](64, units, 2, batch_first=True)
    embed, out = torch.nn.Embedding(vocab, 64), torch.nn.Linear(units, vocab)
    parameters = [*embed.parameters(), *rnn.parameters(), *out.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=rates[0])
    batch = 32
    state, times, losses = None, [], []

    def detached(state):
        return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()

    for step, i in enumerate(range(0, len(x) - batch + 1, batch)):
        for group in optimizer.param_groups:
            group["lr"] = rates[step]
        logits, state = rnn(embed(x[i : i + batch]), state)
        state = detached(state)
        loss = torch.nn.functional.cross_entropy(
            out(logits).reshape(-1, vocab), y[i : i + batch].reshape(-1)
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 5.0)
        optimizer.step()
        losses.append(float(loss))
        times.append(time.perf_counter())
    found = {"train_steps_per_s": round(steady_rate(times), 3), "loss": sum(losses) / len(losses)}
    with torch.no_grad():
        state, start = None, time.perf_counter()
        for i in range(0, len(x) - batch + 1, batch):
            logits, state = rnn(embed(x[i : i + batch]), state)
            out(logits)
        found["infer_steps_per_s"] = round(len(x) / batch / (time.perf_counter() - start), 3)
    found["version"] = torch.__version__
    print(json.dumps(found))


if __name__ == "__main__":
    main(*sys.argv[1:])
