#!/usr/bin/env python3
"""Reference outputs of TFLite models from LiteRT, for tests/tflite_import.rs.

    python3 -m venv /work/venv-tflite
    /work/venv-tflite/bin/pip install ai-edge-litert tensorflow-cpu numpy pillow
    /work/venv-tflite/bin/python tools/pretrained/make_fixtures.py [--cache DIR] [--photo JPG]

Writes tests/fixtures/tflite/:
- synthetic/*.tflite: tiny float32 models made with TensorFlow's converter, one per group of
  operators the two MediaPipe models do not use, with a seeded random input (`*.x.npy`);
- *.npy: LiteRT's outputs (float32), optionally subsampled along some axes ("steps") to keep
  the fixtures small;
- photo128.u8.npy: ../shared/data/detection_photos/person.jpg resized to 128x128 RGB;
- manifest.json: for every model and case, the input (a file, the photo with a scale and
  offset, or the integer-hash pattern below) and each output's tensor name, file and steps.

The integer-hash input needs no file: element i (C order) is lo + (hi - lo) * u with
u = (((i * 2654435761 + seed) mod 2^32) >> 8) / 2^24, computed in float32 - the Rust test
computes the same bits.
"""

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "tflite")


# Synthetic models Fovea must refuse with an error containing this text.
UNSUPPORTED = {"strided_reverse": "only positive strides"}


def hash_input(shape, seed, lo, hi):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    h = ((i * np.uint64(2654435761) + np.uint64(seed)) % np.uint64(2**32)) >> np.uint64(8)
    u = h.astype(np.float32) / np.float32(2**24)
    return (np.float32(lo) + np.float32(hi - lo) * u).astype(np.float32).reshape(shape)


def run_litert(path, x):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], x)
    it.invoke()
    return [(d["name"], it.get_tensor(d["index"]).copy()) for d in it.get_output_details()]


def litert_order(path):
    """Output tensor names in the subgraph's output order (what Fovea returns)."""
    from ai_edge_litert import schema_py_generated as s

    m = s.Model.GetRootAsModel(open(path, "rb").read(), 0)
    g = m.Subgraphs(0)
    return [g.Tensors(g.Outputs(i)).Name().decode() for i in range(g.OutputsLength())]


def float_constants(path):
    """Scalars in the file's float constant tensors (FLOAT32 or FLOAT16 with data): the
    parameter count Fovea's importer should report."""
    from ai_edge_litert import schema_py_generated as s

    m = s.Model.GetRootAsModel(open(path, "rb").read(), 0)
    g = m.Subgraphs(0)
    n = 0
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        if t.Type() in (0, 1) and m.Buffers(t.Buffer()).DataLength() > 0:
            n += int(np.prod(t.ShapeAsNumpy())) if t.ShapeLength() else 1
    return n


def subsample(y, steps):
    return y[tuple(slice(None, None, s) for s in steps)]


def case(path, x, stem, input_spec, steps_for):
    outs = dict(run_litert(path, x))
    entries = []
    for k, name in enumerate(litert_order(path)):
        y = outs[name].astype(np.float32)
        steps = steps_for(y.shape)
        f = f"{stem}.y{k}.npy"
        np.save(os.path.join(OUT, f), np.ascontiguousarray(subsample(y, steps)))
        entries.append({"name": name, "file": f, "steps": list(steps), "shape": list(y.shape),
                        "max_abs": float(np.abs(y).max())})
    return {"input": input_spec, "outputs": entries}


def synthetic_models():
    """(name, concrete function, input shape) of the synthetic models."""
    import tensorflow as tf

    rng = np.random.default_rng(7)

    def w(*shape, scale=0.5):
        return tf.constant(rng.normal(0, scale, shape).astype(np.float32))

    def spec(*shape):
        return tf.TensorSpec(shape, tf.float32, name="x")

    models = []

    @tf.function(input_signature=[spec(1, 5, 7, 3)])
    def arith(x):
        a = x - w(3)
        b = a / (tf.abs(w(1, 1, 1, 3)) + 0.5)
        c = b * x + tf.nn.relu(x)
        d = tf.maximum(c, -0.25) - tf.minimum(x, 0.1) / (x * x + 1.0)
        return tf.identity(d, name="arith_out")

    models.append(("arith", arith, (1, 5, 7, 3)))

    @tf.function(input_signature=[spec(1, 6, 5, 4)])
    def reduce(x):
        m = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        s = tf.reduce_sum(x * m, axis=[3])
        q = tf.squeeze(tf.reduce_mean(x, axis=[2], keepdims=True), axis=[2])
        return tf.identity(s, name="sum_out"), tf.identity(q, name="squeeze_out")

    models.append(("reduce", reduce, (1, 6, 5, 4)))

    @tf.function(input_signature=[spec(1, 7, 6, 5)])
    def slice_(x):
        a = tf.strided_slice(x, [0, 1, 0, 1], [1, 5, 6, 4], [1, 1, 1, 1])
        b = x[:, 2, :, 3:]
        return tf.identity(a * 2.0, name="slice_out"), tf.identity(b + 1.0, name="shrink_out")

    models.append(("slice", slice_, (1, 7, 6, 5)))

    @tf.function(input_signature=[spec(1, 5, 3, 2)])
    def resize(x):
        a = tf.compat.v1.image.resize_bilinear(x, [9, 8], half_pixel_centers=True)
        b = tf.compat.v1.image.resize_nearest_neighbor(x, [10, 7])
        return tf.identity(a, name="bilinear_out"), tf.identity(b, name="nearest_out")

    models.append(("resize", resize, (1, 5, 3, 2)))

    @tf.function(input_signature=[spec(1, 4, 5, 6)])
    def activations(x):
        y = tf.sigmoid(x) + tf.tanh(x * 2.0)
        y = y + tf.clip_by_value(x, -1.0, 1.0) + tf.nn.relu6(x * 4.0)
        y = y + tf.nn.leaky_relu(x, alpha=0.15)
        alpha = w(1, 1, 6)
        y = y + tf.maximum(x, 0.0) + alpha * tf.minimum(x, 0.0)
        y = y + x * tf.nn.relu6(x + 3.0) / 6.0
        return tf.identity(tf.nn.softmax(y * 3.0), name="act_out")

    models.append(("activations", activations, (1, 4, 5, 6)))

    @tf.function(input_signature=[spec(1, 7, 9, 3)])
    def convs(x):
        y = tf.nn.conv2d(x, w(3, 3, 3, 8), strides=2, padding="SAME") + w(8)
        y = tf.nn.relu(y)
        y = tf.nn.depthwise_conv2d(y, w(3, 3, 8, 2), strides=[1, 1, 1, 1], padding="SAME")
        y = tf.nn.avg_pool2d(y, 3, 2, "SAME")
        y = tf.pad(y, [[0, 0], [1, 0], [0, 2], [1, 1]], constant_values=0.5)
        y = tf.nn.max_pool2d(y, 2, 1, "VALID")
        z = tf.nn.conv2d_transpose(y, w(3, 3, 5, 18), output_shape=[1, 3, 7, 5], strides=2, padding="SAME")
        z = z + w(5)
        f = tf.reshape(z, [1, -1])
        f = tf.nn.relu(tf.matmul(f, w(3 * 7 * 5, 6, scale=0.1)) + w(6))
        c = tf.concat([tf.reduce_mean(y, axis=[1, 2]), f], axis=1)
        return tf.identity(c, name="convs_out")

    models.append(("convs", convs, (1, 7, 9, 3)))

    @tf.function(input_signature=[spec(1, 6, 6, 2)])
    def tconv_valid(x):
        z = tf.nn.conv2d_transpose(x, w(2, 3, 4, 2), output_shape=[1, 12, 14, 4], strides=2, padding="VALID")
        return tf.identity(tf.nn.relu(z + w(4)), name="tconv_out")

    models.append(("tconv_valid", tconv_valid, (1, 6, 6, 2)))

    @tf.function(input_signature=[spec(1, 5, 3, 2)])
    def resize_align(x):
        return tf.identity(tf.compat.v1.image.resize_bilinear(x, [9, 8], align_corners=True), name="align_out")

    models.append(("resize_align_corners", resize_align, (1, 5, 3, 2)))

    keras = tf.keras
    keras.utils.set_random_seed(7)
    prelu = keras.Sequential([
        keras.Input((4, 6, 3), batch_size=1, name="x"),
        keras.layers.Conv2D(5, 3, padding="same"),
        keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.RandomUniform(0.05, 0.6)),
        keras.layers.Flatten(),
        keras.layers.Dense(7, activation="tanh"),
    ])
    models.append(("prelu_dense", prelu, (1, 4, 6, 3)))

    # TFLite's other resize conventions (TensorFlow 1's legacy mapping, half-pixel and
    # aligned-corner nearest), up and down, to sizes that are not multiples of the input.
    @tf.function(input_signature=[spec(1, 5, 7, 2)])
    def resize_modes(x):
        a = tf.compat.v1.image.resize_bilinear(x, [9, 4])
        b = tf.compat.v1.image.resize_nearest_neighbor(x, [11, 5], half_pixel_centers=True)
        c = tf.compat.v1.image.resize_nearest_neighbor(x, [3, 13], align_corners=True)
        d = tf.compat.v1.image.resize_bilinear(x, [2, 3], align_corners=True)
        return (tf.identity(a, name="asymmetric_out"), tf.identity(b, name="nearest_half_out"),
                tf.identity(c, name="nearest_align_out"), tf.identity(d, name="align_down_out"))

    models.append(("resize_modes", resize_modes, (1, 5, 7, 2)))

    @tf.function(input_signature=[spec(1, 9, 8, 6)])
    def strided(x):
        a = tf.strided_slice(x, [0, 1, 0, 1], [1, 8, 8, 6], [1, 2, 3, 2])
        b = x[:, ::4, 1:, 2]
        c = x[:, 2:3, ::3, ::5]
        return (tf.identity(a * 2.0, name="steps_out"), tf.identity(b + 1.0, name="shrink_steps_out"),
                tf.identity(c, name="short_out"))

    models.append(("strided", strided, (1, 9, 8, 6)))

    @tf.function(input_signature=[spec(1, 4, 5, 3)])
    def strided_reverse(x):
        return tf.identity(tf.strided_slice(x, [0, 3, 0, 0], [1, -5, 5, 3], [1, -1, 1, 1]), name="reverse_out")

    models.append(("strided_reverse", strided_reverse, (1, 4, 5, 3)))
    return models


def convert(fn):
    import tensorflow as tf

    if isinstance(fn, tf.keras.Model):
        return tf.lite.TFLiteConverter.from_keras_model(fn).convert()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    return conv.convert()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.path.expanduser(
        os.environ.get("FOVEA_PRETRAINED_DIR", "~/.cache/fovea/pretrained")))
    ap.add_argument("--photo", default=os.path.join(ROOT, "..", "shared", "data", "detection_photos", "person.jpg"))
    a = ap.parse_args()
    os.makedirs(os.path.join(OUT, "synthetic"), exist_ok=True)
    from PIL import Image

    photo = np.asarray(Image.open(a.photo).convert("RGB").resize((128, 128), Image.BILINEAR), dtype=np.uint8)
    np.save(os.path.join(OUT, "photo128.u8.npy"), photo)
    import ai_edge_litert
    import tensorflow as tf

    manifest = {"litert": getattr(ai_edge_litert, "__version__", "?"), "tensorflow": tf.__version__,
                "models": []}
    full = lambda shape: [1] * len(shape)
    anchors = lambda shape: [1, 4, 1]
    pixels = lambda shape: [1, 4, 4, 1]

    blaze = os.path.join(ROOT, "data", "pretrained", "face_detection_short_range.tflite")
    photo_in = (photo.astype(np.float32) / np.float32(127.5) - np.float32(1.0))[None]
    manifest["models"].append({"name": "blazeface_short_range", "file": "data/pretrained/face_detection_short_range.tflite",
                               "parameters": float_constants(blaze), "cases": [
        case(blaze, hash_input((1, 128, 128, 3), 1, -1.0, 1.0), "blazeface_short.hash",
             {"kind": "hash", "shape": [1, 128, 128, 3], "seed": 1, "lo": -1.0, "hi": 1.0}, full),
        case(blaze, photo_in, "blazeface_short.photo",
             {"kind": "photo", "file": "photo128.u8.npy", "scale": 1 / 127.5, "offset": -1.0, "repeat": 1}, full),
    ]})
    selfie = os.path.join(ROOT, "data", "pretrained", "selfie_segmentation.tflite")
    photo256 = np.repeat(np.repeat(photo, 2, axis=0), 2, axis=1)
    manifest["models"].append({"name": "selfie_segmentation", "file": "data/pretrained/selfie_segmentation.tflite", "cases": [
        # (On the hash pattern the mask is all but zero everywhere, which tests little.)
        case(selfie, (photo256.astype(np.float32) / np.float32(255.0))[None], "selfie.photo",
             {"kind": "photo", "file": "photo128.u8.npy", "scale": 1 / 255.0, "offset": 0.0, "repeat": 2}, pixels),
        case(selfie, (photo256[:, ::-1].astype(np.float32) / np.float32(255.0))[None], "selfie.photo_flipped",
             {"kind": "photo", "file": "photo128.u8.npy", "scale": 1 / 255.0, "offset": 0.0, "repeat": 2,
              "flip": True}, pixels),
    ]})
    full_range = os.path.join(a.cache, "face_detection_full_range.tflite")
    if os.path.exists(full_range):
        manifest["models"].append({"name": "blazeface_full_range", "cache": "face_detection_full_range.tflite", "cases": [
            case(full_range, hash_input((1, 192, 192, 3), 3, -1.0, 1.0), "blazeface_full.hash",
                 {"kind": "hash", "shape": [1, 192, 192, 3], "seed": 3, "lo": -1.0, "hi": 1.0}, anchors),
        ]})
    else:
        print(f"note: {full_range} absent (run tools/pretrained/fetch.sh); no full-range fixture", file=sys.stderr)

    rng = np.random.default_rng(11)
    for name, fn, shape in synthetic_models():
        rel = f"synthetic/{name}.tflite"
        path = os.path.join(OUT, rel)
        with open(path, "wb") as f:
            f.write(convert(fn))
        x = rng.normal(0, 1.5, shape).astype(np.float32)
        np.save(os.path.join(OUT, f"{name}.x.npy"), x)
        entry = {"name": name, "file": f"tests/fixtures/tflite/{rel}", "cases": [
            case(path, x, name, {"kind": "npy", "file": f"{name}.x.npy"}, full)]}
        if name in UNSUPPORTED:
            entry["expect_error"] = UNSUPPORTED[name]
        manifest["models"].append(entry)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
