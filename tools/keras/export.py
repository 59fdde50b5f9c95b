#!/usr/bin/env python3
"""Export a Keras model to the files Fovea reads: its JSON config and its weights.

Usage:
    python tools/keras/export.py MODEL.keras OUT_PREFIX
    python tools/keras/export.py MODEL.h5 OUT_PREFIX        # tf.keras 2 / Keras 3 HDF5 models

writes OUT_PREFIX.json (model.to_json()) and OUT_PREFIX.safetensors, whose tensors are named
`<layer name>/<variable name>` (conv2d/kernel, batch_normalization/moving_mean, dense_1/bias...)
in Keras's own layouts: HWIO Conv2D kernels, (in, out) Dense kernels, (kh, kw, in, multiplier)
DepthwiseConv2D kernels, (kh, kw, out, in) Conv2DTranspose kernels. tf.keras 2's
DepthwiseConv2D `depthwise_kernel` is written as `kernel`, Keras 3's name (SeparableConv2D
keeps `depthwise_kernel` and `pointwise_kernel`). All tensors are float32.

From Python, `export(model, json_path, weights_path)` does the same for a model in memory.
Works with Keras 3 (keras>=3) and with tf.keras 2.x (tf_keras, or TensorFlow <= 2.15).
Needs numpy only besides Keras (the safetensors file is written by hand).
"""

import json
import os
import struct
import sys

import numpy as np


def weight_name(layer_name, variable, layer_class="DepthwiseConv2D"):
    """`<layer>/<variable>` from a Keras 3 (`kernel`) or tf.keras 2 (`conv2d/kernel:0`) name.
    A DepthwiseConv2D's tf.keras 2 `depthwise_kernel` becomes Keras 3's `kernel`;
    SeparableConv2D keeps its `depthwise_kernel` and `pointwise_kernel`."""
    var = variable.split("/")[-1].split(":")[0]
    if var == "depthwise_kernel" and layer_class == "DepthwiseConv2D":
        var = "kernel"
    return f"{layer_name}/{var}"


def model_weights(model):
    """Every weight of `model` (trainable and not) as (name, float32 array), in layer order."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.weights:
            raise ValueError(f"layer {layer.name!r} is a nested model; Fovea reads flat models only")
        for w in layer.weights:
            name = weight_name(layer.name, w.name, type(layer).__name__)
            out.append((name, np.asarray(w.numpy(), dtype=np.float32)))
    names = [n for n, _ in out]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate weight names {sorted(dupes)}")
    return out


def write_safetensors(path, tensors):
    """Writes [(name, float32 array)] as safetensors, atomically (temporary file, rename)."""
    header, offset, blobs = {}, 0, []
    for name, a in tensors:
        data = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "keras-export", "layout": "keras"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def export(model, json_path, weights_path):
    """Writes the model's config to `json_path` and its weights to `weights_path`."""
    config = model.to_json()
    tmp = json_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(config)
    os.replace(tmp, json_path)
    write_safetensors(weights_path, model_weights(model))


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, prefix = argv[1], argv[2]
    try:
        import keras
    except ImportError:  # tf.keras 2 without the keras package
        from tensorflow import keras
    model = keras.models.load_model(src, compile=False)
    export(model, prefix + ".json", prefix + ".safetensors")
    print(f"wrote {prefix}.json and {prefix}.safetensors ({len(model.weights)} weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
