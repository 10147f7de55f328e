"""PyTorch training-throughput server for the benchmark harness.

Usage:
    .venv-torch/bin/python benches/python/torch_train_server.py \\
        --arch ARCH_JSON --batch-size B --bptt T --threads N [--seed S]

The server builds the reference model of benches/python/enas_reference.py with
random weights and trains it on random tokens, on the CPU. One training step
runs the forward pass over T steps in training mode with all dropouts of the
arch applied. It starts from the state left by the previous step, detached from
its graph. The loss is the mean cross-entropy over the T * B targets. After the
backward pass the gradient norm is clipped to 0.25 and plain SGD (no momentum,
no weight decay) updates the weights with learning rate 20.

Protocol, one line per message, stdout flushed after each line:
- after two warm-up steps the server prints ``ready``
- ``run N`` (N >= 1) runs N steps and prints the elapsed wall-clock seconds as
  a float
- ``quit`` or end of input makes it exit with status 0
- blank lines are ignored

Any other request is logged to stderr and the server exits with status 2, so
the harness reads end of output instead of waiting for a response. All logs go
to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from enas_reference import (  # noqa: E402
    Architecture,
    ArchitectureError,
    EnasLanguageModel,
    parameter_count,
)

GRADIENT_CLIP_NORM = 0.25
LEARNING_RATE = 20.0
WARMUP_STEPS = 2

log = logging.getLogger("torch_train_server")


class Trainer:
    """Training state: model, optimizer and the recurrent state carried between steps."""

    def __init__(self, arch: Architecture, batch_size: int, bptt: int) -> None:
        self.arch = arch
        self.batch_size = batch_size
        self.bptt = bptt
        self.model = EnasLanguageModel(arch).train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)
        self.state = self.model.init_state(batch_size)
        self.last_loss = float("nan")

    def step(self) -> None:
        """Run one training step on a fresh random batch."""
        # T + 1 rows so that the targets are the inputs shifted by one step, as
        # in next-word prediction.
        batch = torch.randint(self.arch.vocab_size, (self.bptt + 1, self.batch_size), dtype=torch.int64)
        inputs, targets = batch[:-1], batch[1:]

        self.optimizer.zero_grad(set_to_none=True)
        logits, state = self.model(inputs, self.state.detach())
        loss = F.cross_entropy(logits.reshape(-1, self.arch.vocab_size), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRADIENT_CLIP_NORM)
        self.optimizer.step()

        self.state = state.detach()
        self.last_loss = loss.item()

    def run(self, steps: int) -> float:
        """Run ``steps`` training steps and return the elapsed seconds."""
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - start


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, type=Path, help="path of the arch.json file")
    parser.add_argument("--batch-size", required=True, type=_positive_int, help="sequences per batch (B)")
    parser.add_argument("--bptt", required=True, type=_positive_int, help="time steps per batch (T)")
    parser.add_argument("--threads", required=True, type=_positive_int, help="torch intra-op CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, tokens and dropout masks (default 0)")
    return parser.parse_args(argv)


def send(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _parse_run_request(request: str) -> int | None:
    """Return N for a ``run N`` request with N >= 1, otherwise None."""
    parts = request.split()
    if len(parts) != 2 or parts[0] != "run":
        return None
    try:
        steps = int(parts[1])
    except ValueError:
        return None
    return steps if steps >= 1 else None


def serve(trainer: Trainer) -> int:
    """Serve requests from stdin until ``quit`` or end of input and return the exit status."""
    for raw in sys.stdin:
        request = raw.strip()
        if not request:
            continue
        if request == "quit":
            log.info("received quit, exiting")
            return 0

        steps = _parse_run_request(request)
        if steps is None:
            log.error("invalid request %r, expected 'run N' with N >= 1 or 'quit'", request)
            return 2

        elapsed = trainer.run(steps)
        send(repr(elapsed))
        log.info(
            "ran %d steps in %.3f s (%.4f s/step), last loss %.4f",
            steps, elapsed, elapsed / steps, trainer.last_loss,
        )

    log.info("end of input, exiting")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(levelname)s: %(message)s")
    args = parse_args(argv)

    try:
        arch = Architecture.load(args.arch)
    except OSError as error:
        log.error("failed to read arch file %s: %s", args.arch, error)
        return 2
    except ArchitectureError as error:
        log.error("invalid arch file: %s", error)
        return 2

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    trainer = Trainer(arch, args.batch_size, args.bptt)
    log.info(
        "torch %s, %d threads, V=%d H=%d nodes=%d tied=%s, %d parameters, B=%d T=%d, seed %d",
        torch.__version__, torch.get_num_threads(), arch.vocab_size, arch.hidden_size,
        len(arch.nodes), arch.tie_weights, parameter_count(trainer.model),
        args.batch_size, args.bptt, args.seed,
    )

    warmup_seconds = trainer.run(WARMUP_STEPS)
    log.info("warm-up of %d steps took %.3f s, loss %.4f", WARMUP_STEPS, warmup_seconds, trainer.last_loss)
    send("ready")
    return serve(trainer)


if __name__ == "__main__":
    sys.exit(main())
