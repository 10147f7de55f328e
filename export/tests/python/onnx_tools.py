"""Independent ONNX tools for the export tests: the onnx checker and onnxruntime.

Run with the interpreter of .venv-onnx (scripts/setup-python-onnx.sh):

    python onnx_tools.py check MODEL
        Runs onnx.checker.check_model(full_check=True) and prints a JSON summary of the
        model: IR version, opsets, op types with their domains, and metadata keys.

    python onnx_tools.py run MODEL DIR
        Reads DIR/token.npy ([T, B] int64) and DIR/state.npy ([T, B, H] float32), runs
        onnxruntime with graph optimizations disabled once per step t on token[t] and
        state[t], and writes DIR/logits.npy ([T, B, V]) and DIR/next_state.npy ([T, B, H]).

Errors go to stderr with exit status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime


def check(model_path: Path) -> None:
    model = onnx.load(str(model_path))
    onnx.checker.check_model(model, full_check=True)
    summary = {
        "ir_version": model.ir_version,
        "opsets": {entry.domain or "ai.onnx": entry.version for entry in model.opset_import},
        "ops": sorted({f"{node.domain or 'ai.onnx'}:{node.op_type}" for node in model.graph.node}),
        "metadata_keys": sorted(entry.key for entry in model.metadata_props),
        "inputs": [value.name for value in model.graph.input],
        "outputs": [value.name for value in model.graph.output],
    }
    print(json.dumps(summary))


def run(model_path: Path, folder: Path) -> None:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    tokens = np.load(folder / "token.npy")
    states = np.load(folder / "state.npy")
    if tokens.dtype != np.int64 or states.dtype != np.float32:
        raise ValueError(f"expected int64 tokens and float32 states, got {tokens.dtype} and {states.dtype}")
    logits, next_states = [], []
    for token, state in zip(tokens, states):
        step_logits, step_state = session.run(["logits", "next_state"], {"token": token, "state": state})
        logits.append(step_logits)
        next_states.append(step_state)
    np.save(folder / "logits.npy", np.stack(logits).astype(np.float32))
    np.save(folder / "next_state.npy", np.stack(next_states).astype(np.float32))


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "check":
        check(Path(argv[2]))
    elif len(argv) == 4 and argv[1] == "run":
        run(Path(argv[2]), Path(argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as error:  # noqa: BLE001 - every failure is reported the same way
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
