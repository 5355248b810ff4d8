"""Convert a Kokoro v1.0 ONNX export (int8 dynamically quantized, or float) into our state dict.

We walk the graph rather than trusting initializer names, because the quantizer renamed many weights
(`onnx::MatMul_6547_quantized`, `/encoder/F0.0/Mul_output_0_quantized`); the node that consumes a weight still
carries the module path (`/encoder/bert/encoder/embedding_hidden_mapping_in/MatMul_quant`). Conversions:
- dequantize: (q - zero_point) * scale, per tensor or per output channel;
- MatMul weights are stored [in, out]: transpose to nn.Linear's [out, in];
- LSTM weights are [directions, in, 4 * hidden] in ONNX gate order (i, o, f, c): split per direction,
  transpose, reorder to PyTorch's (i, f, g, o); biases [directions, 8 * hidden] are W-bias then R-bias;
- export-only constants (the iSTFT bases, reciprocals of snake alphas, shape constants) are skipped.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import torch

# ONNX module prefixes -> ours (Kokoro's checkpoint layout)
_PREFIXES = (
    ("encoder.bert_encoder.", "bert_encoder."),
    ("encoder.bert.", "bert."),
    ("encoder.text_encoder.", "text_encoder."),
    ("encoder.predictor.", "predictor."),
    ("decoder.decoder.", "decoder."),
    # node paths of predictor submodules lost the `predictor` level in this export
    ("encoder.F0.", "predictor.F0."),
    ("encoder.N.", "predictor.N."),
    ("encoder.F0_proj.", "predictor.F0_proj."),
    ("encoder.N_proj.", "predictor.N_proj."),
    ("encoder.shared.", "predictor.shared."),
)
_WEIGHT_OPS = {"ConvInteger", "MatMulInteger", "DynamicQuantizeLSTM", "Gather", "Conv", "ConvTranspose", "MatMul", "LSTM", "Gemm"}
_LSTM_GATES = (0, 2, 3, 1)  # ONNX (i, o, f, c) -> PyTorch (i, f, g, o)


class ConversionError(ValueError):
    pass


def _rename(name: str) -> str:
    for old, new in _PREFIXES:
        if (name + ".").startswith(old):
            return (new + name[len(old) :]) if len(name) >= len(old) else new[:-1]
    raise ConversionError(f"no module of ours corresponds to ONNX weight {name!r}")


def _module_path(node_name: str) -> str:
    """'/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0/attention/query_1/MatMul_quant'
    -> 'encoder.bert.encoder.albert_layer_groups.0.albert_layers.0.attention.query'."""
    parts = node_name.strip("/").split("/")[:-1]  # drop the op itself
    parts = [re.sub(r"_\d+$", "", p) for p in parts]  # repeated applications of a shared layer
    # '/encoder/text_encoder/cnn.0/cnn.0.0/Conv' -> keep the innermost full path component
    out: list[str] = []
    for p in parts:
        if out and p.startswith(out[-1] + "."):
            out[-1] = p
        else:
            out.append(p)
    return ".".join(out)


def _lstm(w: np.ndarray) -> list[np.ndarray]:
    """[dirs, in, 4H] -> per direction [4H, in] in PyTorch gate order."""
    out = []
    for d in range(w.shape[0]):
        blocks = np.split(w[d].T, 4, axis=0)
        out.append(np.concatenate([blocks[i] for i in _LSTM_GATES], axis=0))
    return out


def _lstm_bias(b: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for d in range(b.shape[0]):
        wb, rb = np.split(b[d], 2)
        out.append(tuple(np.concatenate([np.split(x, 4)[i] for i in _LSTM_GATES]) for x in (wb, rb)))
    return out


def convert_onnx(source) -> dict[str, torch.Tensor]:
    """Read an ONNX export of Kokoro v1.0 (a path or a loaded onnx.ModelProto) and return a float32 state dict
    keyed like `KokoroNetwork`."""
    import onnx
    from onnx import numpy_helper

    model = source if isinstance(source, onnx.ModelProto) else onnx.load(str(source))
    graph = model.graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    consumers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in arrays:
                consumers[name].append((node, i))

    def weight_consumer(name: str):
        for node, i in consumers.get(name, ()):
            if node.op_type in _WEIGHT_OPS:
                return node, i
        return None, None

    def quant_params(name: str, node, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(scale, zero_point) of a quantized initializer; the quantizer shares and renames them, so ask the
        graph: the consuming node's inputs, or the DequantizeLinear that follows a quantized Gather."""
        base = name[: -len("_quantized")]
        if node.op_type in ("ConvInteger", "MatMulInteger"):
            zero = node.input[3]
        elif node.op_type == "DynamicQuantizeLSTM":
            zero = node.input[9 if index == 1 else 11]
            return arrays[node.input[8 if index == 1 else 10]], arrays[zero]
        else:  # Gather -> DequantizeLinear(x, scale, zero_point)
            deq = next(n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] == node.output[0])
            return arrays[deq.input[1]], arrays[deq.input[2]]
        return arrays[base + "_scale"], arrays[zero]

    def dequantized(name: str, node, index: int) -> np.ndarray:
        q = arrays[name].astype(np.float32)
        scale, zero = (a.astype(np.float32) for a in quant_params(name, node, index))
        if scale.size > 1:
            shape = [1] * q.ndim
            if node.op_type == "MatMulInteger":
                shape[-1] = scale.size  # per output column of an [in, out] matrix
            elif node.op_type == "DynamicQuantizeLSTM":
                shape = [q.shape[0], 1, -1]  # per direction (and maybe per gate column)
            else:
                shape[0] = scale.size  # per output channel
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return (q - zero) * scale

    state: dict[str, np.ndarray] = {}

    def put(key: str, value: np.ndarray) -> None:
        if key in state and not np.array_equal(state[key], value):
            raise ConversionError(f"two different ONNX tensors map to {key!r}")
        state[key] = value

    for name, value in arrays.items():
        if name.endswith(("_scale", "_zero_point", "_quantized_reshape_shape")) or ".stft." in name:
            continue  # quantization parameters, and the export's own iSTFT bases (we compute ours)
        quantized = name.endswith("_quantized")
        base = name[: -len("_quantized")] if quantized else name
        node, index = weight_consumer(name)
        if node is None:
            # named float parameters (biases, norms, alphas); unnamed ones are export constants
            if name.startswith(("encoder.", "decoder.")):
                put(_rename(name), value.astype(np.float32))
            continue
        op = node.op_type
        if op in ("DynamicQuantizeLSTM", "LSTM"):
            prefix = _rename(_module_path(node.name)) + "."
            if index in (1, 2):  # W, R
                w = dequantized(name, node, index) if quantized else value.transpose(0, 2, 1)
                kind = "ih" if index == 1 else "hh"
                for d, m in enumerate(_lstm(w)):
                    put(f"{prefix}weight_{kind}_l0{'_reverse' if d else ''}", m)
            elif index == 3:  # B
                for d, (wb, rb) in enumerate(_lstm_bias(value.astype(np.float32))):
                    sfx = "_reverse" if d else ""
                    put(f"{prefix}bias_ih_l0{sfx}", wb)
                    put(f"{prefix}bias_hh_l0{sfx}", rb)
            continue
        if index != (0 if op == "Gather" else 1):
            if name.startswith(("encoder.", "decoder.")):  # a named bias of a float conv
                put(_rename(name), value.astype(np.float32))
            continue  # else an initializer used as data, not as a weight
        w = dequantized(name, node, index) if quantized else value.astype(np.float32)
        if op in ("MatMulInteger", "MatMul"):
            w = w.T
        key = _rename(base) if base.startswith(("encoder.", "decoder.")) else _rename(_module_path(node.name)) + ".weight"
        put(key, w)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
