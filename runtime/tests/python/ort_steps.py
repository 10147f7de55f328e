"""Runs an exported edgenas step graph in onnxruntime over a token sequence, feeding the
state back each step, and prints the logits of every step as JSON.

Usage: ort_steps.py MODEL.onnx TOKEN_ID...
"""

import json
import sys

import numpy as np
import onnxruntime as ort


def main() -> None:
    model, tokens = sys.argv[1], [int(t) for t in sys.argv[2:]]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    hidden = session.get_inputs()[1].shape[1]
    state = np.zeros((1, hidden), dtype=np.float32)
    steps = []
    for token in tokens:
        logits, state = session.run(
            ["logits", "next_state"],
            {"token": np.array([token], dtype=np.int64), "state": state},
        )
        steps.append(logits[0].tolist())
    json.dump(steps, sys.stdout)


if __name__ == "__main__":
    main()
