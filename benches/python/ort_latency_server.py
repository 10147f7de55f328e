"""onnxruntime latency server for the per-word latency benchmark.

Usage:
    .venv-onnx/bin/python benches/python/ort_latency_server.py [--seed S]

The server runs edgenas step models (``token`` int64 [1] and ``state`` float32
[1, H] in, ``logits`` [1, V] and ``next_state`` out) with onnxruntime on the
CPU, one word at a time, as the Rust benchmark runs them with tract. One word is
a session run on one token, a softmax over the logits and the 5 most probable
ids, and the next state is fed back for the following word. Sessions use one
intra-op and one inter-op thread and the default graph optimization level.

Protocol, one line per message, stdout flushed after each line:
- at start the server prints ``ready``
- ``load PATH`` loads a model, runs 20 warm-up words and prints ``loaded H V``
- ``run N`` (N >= 1) runs N words on the loaded model and prints the elapsed
  wall-clock seconds as a float
- ``quit`` or end of input makes it exit with status 0
- blank lines are ignored

Any other request, a ``run`` before a ``load`` or a model that fails to load is
logged to stderr and the server exits with status 2, so the harness reads end of
output instead of waiting for a response. All logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

TOP_K = 5
# Exceptions onnxruntime raises for a missing or invalid model file.
ORT_LOAD_ERRORS = (
    ort_state.Fail,
    ort_state.InvalidArgument,
    ort_state.InvalidProtobuf,
    ort_state.NoSuchFile,
)
WARMUP_WORDS = 20

log = logging.getLogger("ort_latency_server")


class Stepper:
    """One loaded model with its recurrent state and a stream of random token ids."""

    def __init__(self, path: str, seed: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        self.hidden_size = int(inputs["state"][1])
        self.vocab_size = int(outputs["logits"][1])
        self.state = np.zeros((1, self.hidden_size), dtype=np.float32)
        self.rng = np.random.default_rng(seed)
        log.info(
            "loaded %s: H=%d V=%d, optimization level %s, onnxruntime %s",
            path, self.hidden_size, self.vocab_size,
            options.graph_optimization_level, ort.__version__,
        )

    def word(self, token: int) -> np.ndarray:
        """Run one word and return the ids of the TOP_K most probable next tokens."""
        logits, self.state = self.session.run(
            None, {"token": np.array([token], dtype=np.int64), "state": self.state}
        )
        row = logits[0]
        probabilities = np.exp(row - row.max())
        probabilities /= probabilities.sum()
        best = np.argpartition(probabilities, -TOP_K)[-TOP_K:]
        return best[np.argsort(-probabilities[best])]

    def run(self, words: int) -> float:
        """Run ``words`` words on random tokens and return the elapsed seconds."""
        tokens = self.rng.integers(0, self.vocab_size, size=words)
        start = time.perf_counter()
        for token in tokens:
            self.word(int(token))
        return time.perf_counter() - start


def send(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parse_run_request(request: str) -> int | None:
    """Return N for a ``run N`` request with N >= 1, otherwise None."""
    parts = request.split()
    if len(parts) != 2 or parts[0] != "run":
        return None
    try:
        words = int(parts[1])
    except ValueError:
        return None
    return words if words >= 1 else None


def handle(request: str, stepper: Stepper | None, seed: int) -> Stepper | None:
    """Handle one request and return the loaded model. Raise ValueError on a bad request."""
    if request.startswith("load "):
        stepper = Stepper(request[len("load "):], seed)
        stepper.run(WARMUP_WORDS)
        send(f"loaded {stepper.hidden_size} {stepper.vocab_size}")
        return stepper
    words = parse_run_request(request)
    if words is None:
        raise ValueError(f"invalid request {request!r}, expected 'load PATH', 'run N' with N >= 1 or 'quit'")
    if stepper is None:
        raise ValueError("'run' before any 'load'")
    send(repr(stepper.run(words)))
    return stepper


def serve(seed: int) -> int:
    """Serve requests from stdin until ``quit`` or end of input and return the exit status."""
    stepper = None
    for raw in sys.stdin:
        request = raw.strip()
        if not request:
            continue
        if request == "quit":
            return 0
        try:
            stepper = handle(request, stepper, seed)
        except ValueError as error:
            log.error("%s", error)
            return 2
        except (OSError, *ORT_LOAD_ERRORS) as error:
            log.error("failed to load the model: %s", error)
            return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(levelname)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random token ids (default 0)")
    args = parser.parse_args(argv)
    send("ready")
    return serve(args.seed)


if __name__ == "__main__":
    sys.exit(main())
