"""Plain PyTorch reference of the edgenas recurrent cell and language model.

This module is written from the model equations, independently of the Rust
implementation, so that cell fixtures and throughput numbers come from a second
source. The ``state_dict`` keys of :class:`EnasLanguageModel` are the tensor
names shared with the Rust side:

- ``embedding.weight`` [V, H]
- ``cell.node0.w_x`` [2H, H] and ``cell.node0.w_h`` [2H, H]
- ``cell.node{i}.w`` [2H, H] for i = 1 .. n-1
- ``decoder.bias`` [V]
- ``decoder.weight`` [V, H], only when ``tie_weights`` is false

Weights use the PyTorch [out, in] layout. For every node the first H columns of
the pre-activation are the highway gate and the last H columns the candidate.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

ARCH_FORMAT_VERSION = 1

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda t: t,
    "sigmoid": torch.sigmoid,
}

DROPOUT_KEYS = ("embedding", "input", "hidden", "output")

_ARCH_KEYS = {"version", "vocab_size", "hidden_size", "nodes", "tie_weights", "dropout"}


class ArchitectureError(ValueError):
    """Invalid architecture description (arch.json)."""


@dataclass(frozen=True)
class NodeSpec:
    """One cell node: the index of the node it reads (None for node 0) and its activation."""

    input: int | None
    activation: str


@dataclass(frozen=True)
class Architecture:
    """Validated contents of an arch.json file."""

    vocab_size: int
    hidden_size: int
    nodes: tuple[NodeSpec, ...]
    tie_weights: bool
    dropout: dict[str, float]

    @property
    def loose_ends(self) -> list[int]:
        """Indices of the nodes that no other node reads, in increasing order."""
        read = {node.input for node in self.nodes if node.input is not None}
        return [k for k in range(len(self.nodes)) if k not in read]

    @classmethod
    def from_dict(cls, data: Any) -> "Architecture":
        """Validate a decoded arch.json object and build an Architecture.

        Raises ArchitectureError naming the first invalid or missing field.
        Unknown keys are rejected so that a misspelled field fails loudly.
        """
        if not isinstance(data, dict):
            raise ArchitectureError(f"arch must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - _ARCH_KEYS)
        if unknown:
            raise ArchitectureError(f"unknown arch keys {unknown}, expected only {sorted(_ARCH_KEYS)}")
        missing = sorted(_ARCH_KEYS - set(data))
        if missing:
            raise ArchitectureError(f"missing arch keys {missing}")

        if type(data["version"]) is not int or data["version"] != ARCH_FORMAT_VERSION:
            raise ArchitectureError(
                f"unsupported arch version {data['version']!r}, expected {ARCH_FORMAT_VERSION}"
            )
        vocab_size = _positive_int(data["vocab_size"], "vocab_size")
        hidden_size = _positive_int(data["hidden_size"], "hidden_size")
        nodes = _parse_nodes(data["nodes"])

        tie_weights = data["tie_weights"]
        if not isinstance(tie_weights, bool):
            raise ArchitectureError(f"tie_weights must be true or false, got {tie_weights!r}")

        return cls(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            nodes=nodes,
            tie_weights=tie_weights,
            dropout=_parse_dropout(data["dropout"]),
        )

    @classmethod
    def load(cls, path: str | Path) -> "Architecture":
        """Read and validate an arch.json file.

        Raises OSError when the file cannot be read and ArchitectureError, with
        the path in the message, when its contents are invalid.
        """
        with open(path, encoding="utf-8") as file:
            text = file.read()
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as error:
            raise ArchitectureError(f"{path}: invalid JSON: {error}") from None
        except ArchitectureError as error:
            raise ArchitectureError(f"{path}: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        """Return the arch.json object for this architecture."""
        nodes = []
        for node in self.nodes:
            entry: dict[str, Any] = {}
            if node.input is not None:
                entry["input"] = node.input
            entry["activation"] = node.activation
            nodes.append(entry)
        return {
            "version": ARCH_FORMAT_VERSION,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "nodes": nodes,
            "tie_weights": self.tie_weights,
            "dropout": {key: self.dropout[key] for key in DROPOUT_KEYS},
        }


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ArchitectureError(f"{name} must be a positive integer, got {value!r}")
    return value


def _parse_nodes(raw_nodes: Any) -> tuple[NodeSpec, ...]:
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise ArchitectureError("nodes must be a non-empty list")
    nodes = []
    for index, raw in enumerate(raw_nodes):
        if not isinstance(raw, dict):
            raise ArchitectureError(f"nodes[{index}] must be an object, got {raw!r}")
        unknown = sorted(set(raw) - {"input", "activation"})
        if unknown:
            raise ArchitectureError(f"nodes[{index}] has unknown keys {unknown}")

        activation = raw.get("activation")
        if activation not in ACTIVATIONS:
            raise ArchitectureError(
                f"invalid nodes[{index}].activation {activation!r}, expected one of {sorted(ACTIVATIONS)}"
            )

        if index == 0:
            if "input" in raw:
                raise ArchitectureError("nodes[0] reads x_t and h_{t-1} and must not have an input")
            source = None
        else:
            source = raw.get("input")
            if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < index:
                raise ArchitectureError(
                    f"invalid nodes[{index}].input {source!r}, expected an integer in [0, {index})"
                )
        nodes.append(NodeSpec(input=source, activation=activation))
    return tuple(nodes)


def _parse_dropout(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict) or set(raw) != set(DROPOUT_KEYS):
        raise ArchitectureError(f"dropout must be an object with exactly the keys {list(DROPOUT_KEYS)}")
    dropout = {}
    for key in DROPOUT_KEYS:
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ArchitectureError(f"invalid dropout.{key} {value!r}, expected a number in [0, 1)")
        dropout[key] = float(value)
    return dropout


class _FirstNode(nn.Module):
    """Node 0 weights: w_x applies to the input embedding, w_h to the previous state."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.w_x = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
        self.w_h = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))


class _Node(nn.Module):
    """Weights of node i > 0, which reads the state of one earlier node."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))


class _DecoderBias(nn.Module):
    """Decoder bias of a tied model, whose decoder weight is embedding.weight."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.empty(vocab_size))


def _highway(pre: torch.Tensor, carry: torch.Tensor, activation: str) -> torch.Tensor:
    """Mix the activated candidate with ``carry`` through the sigmoid gate."""
    hidden_size = carry.shape[-1]
    gate = torch.sigmoid(pre[..., :hidden_size])
    candidate = ACTIVATIONS[activation](pre[..., hidden_size:])
    return gate * candidate + (1.0 - gate) * carry


class EnasCell(nn.Module):
    """ENAS recurrent cell: a DAG of highway nodes whose loose ends are averaged."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.hidden_size = arch.hidden_size
        self.nodes = arch.nodes
        self.loose_ends = arch.loose_ends
        self.add_module("node0", _FirstNode(arch.hidden_size))
        for index in range(1, len(arch.nodes)):
            self.add_module(f"node{index}", _Node(arch.hidden_size))

    def input_projection(self, x: torch.Tensor) -> torch.Tensor:
        """Compute ``x @ w_x.T`` for any leading shape.

        The term does not depend on the state, so a caller may compute it for
        all time steps at once and pass each slice to :meth:`step`.
        """
        return x @ self.node0.w_x.T

    def step(
        self,
        x_projection: torch.Tensor,
        h: torch.Tensor,
        hidden_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Advance the cell by one time step and return the next state [B, H].

        ``x_projection`` is ``input_projection(x_t)``. ``hidden_mask`` scales
        h_{t-1} where node 0 reads it through w_h. The highway carry of node 0
        always uses the unmasked h_{t-1}.
        """
        h_read = h if hidden_mask is None else h * hidden_mask
        pre = x_projection + h_read @ self.node0.w_h.T
        states = [_highway(pre, h, self.nodes[0].activation)]

        for index in range(1, len(self.nodes)):
            node = self.nodes[index]
            source = states[node.input]
            weight = getattr(self, f"node{index}").w
            states.append(_highway(source @ weight.T, source, node.activation))

        # Sum in increasing node order, then divide by the count.
        total = states[self.loose_ends[0]]
        for k in self.loose_ends[1:]:
            total = total + states[k]
        return total / len(self.loose_ends)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, hidden_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Advance the cell by one step from the input embedding x [B, H] and state h [B, H]."""
        return self.step(self.input_projection(x), h, hidden_mask)


def _inverted_dropout_mask(
    shape: tuple[int, ...], p: float, like: torch.Tensor
) -> torch.Tensor:
    """Draw a Bernoulli keep mask with probability 1 - p, scaled by 1 / (1 - p)."""
    keep = 1.0 - p
    return torch.bernoulli(torch.full(shape, keep, dtype=like.dtype, device=like.device)) / keep


class EnasLanguageModel(nn.Module):
    """Word-level language model: embedding, ENAS cell, linear decoder.

    In training mode the four dropouts of ``arch.dropout`` are applied. Every
    mask is drawn once per call of :meth:`forward`, so a variational mask is
    shared by all T steps of the sequence. In eval mode no dropout is applied.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.embedding = nn.Embedding(arch.vocab_size, arch.hidden_size)
        self.cell = EnasCell(arch)
        if arch.tie_weights:
            self.decoder: nn.Module = _DecoderBias(arch.vocab_size)
        else:
            self.decoder = nn.Linear(arch.hidden_size, arch.vocab_size)
        self.reset_parameters()

    def reset_parameters(self, init_range: float = 0.1) -> None:
        """Draw every weight from U(-init_range, init_range) and zero the decoder bias."""
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                if name == "decoder.bias":
                    parameter.zero_()
                else:
                    parameter.uniform_(-init_range, init_range)

    def decoder_weight(self) -> torch.Tensor:
        """Return the [V, H] decoder weight: embedding.weight when tied."""
        if self.arch.tie_weights:
            return self.embedding.weight
        return self.decoder.weight

    def init_state(self, batch_size: int) -> torch.Tensor:
        """Return a zero state [B, H] with the dtype and device of the parameters."""
        weight = self.embedding.weight
        return torch.zeros(batch_size, self.arch.hidden_size, dtype=weight.dtype, device=weight.device)

    def forward(self, tokens: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the model over a sequence.

        tokens: int64 [T, B]; state: [B, H], the state before the first step.
        Returns the logits [T, B, V] and the state after the last step [B, H].
        """
        if tokens.dim() != 2:
            raise ValueError(f"tokens must have shape [T, B], got {tuple(tokens.shape)}")
        steps, batch_size = tokens.shape
        hidden_size = self.arch.hidden_size
        if state.shape != (batch_size, hidden_size):
            raise ValueError(
                f"state must have shape [{batch_size}, {hidden_size}], got {tuple(state.shape)}"
            )

        dropout = self.arch.dropout if self.training else dict.fromkeys(DROPOUT_KEYS, 0.0)
        weight = self.embedding.weight

        x = F.embedding(tokens, weight)
        if dropout["embedding"] > 0.0:
            # Dropping whole rows of the table is the same as scaling each
            # looked-up row by its row mask entry, which avoids a [V, H] product.
            # A tied decoder still uses the full, unmasked embedding.weight.
            row_mask = _inverted_dropout_mask((self.arch.vocab_size, 1), dropout["embedding"], weight)
            x = x * row_mask[tokens]
        if dropout["input"] > 0.0:
            x = x * _inverted_dropout_mask((batch_size, hidden_size), dropout["input"], weight)

        hidden_mask = None
        if dropout["hidden"] > 0.0:
            hidden_mask = _inverted_dropout_mask((batch_size, hidden_size), dropout["hidden"], weight)

        x_projection = self.cell.input_projection(x)
        outputs = []
        h = state
        for t in range(steps):
            h = self.cell.step(x_projection[t], h, hidden_mask)
            outputs.append(h)
        hidden = torch.stack(outputs)

        # The output mask applies only to the decoder input; the recurrent state
        # passed to the next step stays unmasked.
        if dropout["output"] > 0.0:
            hidden = hidden * _inverted_dropout_mask((batch_size, hidden_size), dropout["output"], weight)

        logits = F.linear(hidden, self.decoder_weight(), self.decoder.bias)
        return logits, h


def parameter_count(model: nn.Module) -> int:
    """Return the number of scalar parameters, counting a tied weight once."""
    return sum(math.prod(p.shape) for p in model.parameters())
