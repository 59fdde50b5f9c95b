#!/usr/bin/env python3
"""Make the Keras interchange fixtures of tests/keras_interchange.rs.

Usage (TensorFlow on the CPU is enough):
    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu tf_keras
    /tmp/tfenv/bin/python tools/keras/make_fixtures.py [OUT_DIR] [--only NAME,NAME]
    # OUT_DIR defaults to tests/fixtures/keras; --only remakes those models and keeps the
    # manifest entries of the others

For every model NAME it writes, with seeded random weights (non-trivial BatchNormalization
statistics) and seeded random inputs:
    NAME.json             model.to_json()
    NAME.safetensors      the weights, named <layer>/<variable> (see export.py)
    NAME.x.npy            inputs (float32)
    NAME.y.npy            Keras's outputs for them (inference mode)
(for several inputs or outputs: NAME.x.npz / NAME.y.npz keyed by the input / output layer's
name, and NAME.x.<name>.npy / NAME.y.<name>.npy for each) and for the training models also
    NAME.labels.npy       int32 sparse labels: (samples,), or (samples, H, W) per pixel
    NAME.sgd.safetensors  weights after one epoch of SGD (no shuffle, batch 8)
    NAME.adam.safetensors weights after one epoch of Adam (no shuffle, batch 8), where made
with sparse categorical cross-entropy from logits. manifest.json records the Keras and
TensorFlow versions, the hyperparameters and Keras's epoch losses. The tf2_* models are made
with tf.keras 2 (the tf_keras package) to cover its config format; the rest with Keras 3.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from export import export  # noqa: E402

TRAIN = dict(samples=16, batch_size=8, sgd_lr=0.1, adam_lr=0.01)


def randomize(model, seed):
    """Seeded random weights: kernels ~ N(0, 1/fan_in), biases and beta ~ N(0, 0.2), gamma in
    [0.5, 1.5], moving means ~ N(0, 0.3), moving variances in [0.5, 2]."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for w in layer.weights:
            name = w.name.split("/")[-1].split(":")[0]
            shape = tuple(w.shape)
            if name == "moving_mean":
                v = rng.normal(0, 0.3, shape)
            elif name == "moving_variance":
                v = rng.uniform(0.5, 2.0, shape)
            elif name == "gamma":
                v = rng.uniform(0.5, 1.5, shape)
            elif name in ("beta", "bias"):
                v = rng.normal(0, 0.2, shape)
            else:
                fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                v = rng.normal(0, 1.0 / np.sqrt(max(fan_in, 1)), shape)
            w.assign(v.astype(np.float32))


def keras3_models():
    import keras
    from keras import layers as L

    def seq_cnn():
        # Every image layer in a Sequential stack.
        return keras.Sequential(
            [
                keras.Input((8, 8, 3)),
                L.Conv2D(6, 3, padding="same", activation="relu"),
                L.BatchNormalization(momentum=0.9, epsilon=0.01),
                L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu6"),
                L.Conv2D(6, 1, groups=3, use_bias=False),
                L.MaxPooling2D(2),
                L.Conv2D(4, 3, dilation_rate=2, padding="same", activation="tanh"),
                L.AveragePooling2D(3, strides=1, padding="same"),
                L.ZeroPadding2D(((1, 0), (2, 1))),
                L.Flatten(),
                L.Dropout(0.3),
                L.Dense(8, activation="sigmoid"),
                L.Dense(5),
            ],
            name="seq_cnn",
        )

    def func_unet():
        # A small U-Net: strided conv down, transposed conv (same) up, skips by Concatenate and Add.
        x = keras.Input((8, 8, 2), name="image")
        c1 = L.Conv2D(4, 3, padding="same", activation="leaky_relu")(x)
        d = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(c1)
        d = L.BatchNormalization(momentum=0.8, epsilon=1e-4, scale=False)(d)
        u = L.Conv2DTranspose(4, 3, strides=2, padding="same")(d)
        cat = L.Concatenate()([c1, u])
        m = L.Conv2D(4, 1)(cat)
        a = L.Add()([m, c1])
        up = L.UpSampling2D(2, interpolation="bilinear")(a)
        y = L.Conv2D(3, 3, strides=2, padding="same", dilation_rate=1)(up)
        return keras.Model(x, y, name="func_unet")

    def func_misc():
        # Valid transposed conv, pooling with same padding, nearest upsampling, reshapes,
        # Concatenate on a spatial axis, activations as layers, a softmax head.
        x = keras.Input((4, 4, 3), name="pixels")
        z = L.ZeroPadding2D(1)(x)
        t = L.Conv2DTranspose(4, 3, strides=2, padding="valid", activation="relu")(z)
        p = L.MaxPooling2D(3, strides=2, padding="same")(t)
        u = L.UpSampling2D((2, 1))(p)
        a = L.AveragePooling2D((2, 1))(u)
        r = L.Reshape((49, 4))(a)
        r = L.Reshape((7, 7, -1))(r)
        b1 = L.Conv2D(3, (3, 2), strides=(2, 1), use_bias=False)(r)
        b2 = L.Activation("tanh")(L.Conv2D(3, (3, 2), strides=(2, 1), padding="valid")(r))
        cat = L.Concatenate(axis=1)([b1, b2])
        g = L.GlobalAveragePooling2D()(cat)
        h = L.Dense(6, activation="relu")(g)
        h = L.Activation("sigmoid")(h)
        y = L.Dense(4, activation="softmax")(h)
        return keras.Model(x, y, name="func_misc")

    def train_seq():
        return keras.Sequential(
            [
                keras.Input((6, 6, 3)),
                L.Conv2D(4, 3, padding="same", activation="relu"),
                L.BatchNormalization(momentum=0.9, epsilon=1e-3),
                L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
                L.MaxPooling2D(2),
                L.Conv2D(6, 3, groups=2, padding="same", activation="relu"),
                L.AveragePooling2D(2, padding="same"),
                L.GlobalAveragePooling2D(),
                L.Dense(3),
            ],
            name="train_seq",
        )

    def train_func():
        x = keras.Input((8, 8, 2))
        c1 = L.Conv2D(4, 3, padding="same", activation="relu")(x)
        # No bias before BatchNormalization: its gradient is zero up to rounding, which Adam
        # would turn into steps of +-learning_rate in directions set by float32 noise.
        d = L.Conv2D(4, 3, strides=2, padding="same", use_bias=False)(c1)
        d = L.BatchNormalization(momentum=0.8, epsilon=1e-3, center=False)(d)
        u1 = L.Conv2DTranspose(4, 3, strides=2, padding="same")(d)
        u2 = L.Conv2DTranspose(4, 2, strides=2, padding="valid", activation="tanh")(d)
        u3 = L.UpSampling2D(2, interpolation="bilinear")(d)
        a = L.Add()([c1, u1, u2, u3])
        cat = L.Concatenate()([a, c1])
        p = L.AveragePooling2D(2)(cat)
        z = L.ZeroPadding2D(1)(p)
        r = L.Conv2D(3, 3, dilation_rate=2)(z)
        f = L.Flatten()(r)
        f = L.Dropout(0.0)(f)
        y = L.Dense(4)(f)
        return keras.Model(x, y, name="train_func")

    def train_frozen():
        # A frozen Conv2D and a frozen BatchNormalization (Keras 3: inference mode in training,
        # moving statistics kept) before a trainable Conv2D, BatchNormalization and Dense head.
        m = keras.Sequential(
            [
                keras.Input((6, 6, 3)),
                L.Conv2D(4, 3, padding="same", activation="relu", name="frozen_conv"),
                L.BatchNormalization(momentum=0.9, name="frozen_bn"),
                L.Conv2D(4, 3, padding="same", use_bias=False, name="conv"),
                L.BatchNormalization(momentum=0.9, name="bn"),
                L.ReLU(),
                L.GlobalAveragePooling2D(),
                L.Dense(3, name="head"),
            ],
            name="train_frozen",
        )
        m.get_layer("frozen_conv").trainable = False
        m.get_layer("frozen_bn").trainable = False
        return m

    def mobilenet_blocks():
        # MobileNetV2 inverted residual blocks (expand 1x1, depthwise 3x3, linear project 1x1)
        # with Keras's ReLU(6.0) layer, one with a residual Add, one strided.
        x = keras.Input((8, 8, 4), name="image")

        def block(h, expand, out, stride, name):
            c = h.shape[-1]
            y = L.Conv2D(c * expand, 1, use_bias=False, name=f"{name}_expand")(h)
            y = L.BatchNormalization(name=f"{name}_expand_bn")(y)
            y = L.ReLU(6.0, name=f"{name}_expand_relu")(y)
            if stride == 2:
                y = L.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(y)
            y = L.DepthwiseConv2D(
                3, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False, name=f"{name}_dw"
            )(y)
            y = L.BatchNormalization(name=f"{name}_dw_bn")(y)
            y = L.ReLU(6.0, name=f"{name}_dw_relu")(y)
            y = L.Conv2D(out, 1, use_bias=False, name=f"{name}_project")(y)
            y = L.BatchNormalization(name=f"{name}_project_bn")(y)
            if stride == 1 and c == out:
                y = L.Add(name=f"{name}_add")([h, y])
            return y

        h = block(x, 3, 4, 1, "block1")
        h = block(h, 2, 6, 2, "block2")
        h = L.GlobalAveragePooling2D()(h)
        y = L.Dense(3)(h)
        return keras.Model(x, y, name="mobilenet_blocks")

    def new_layers():
        # Every layer class added for issue 10, with non-default arguments.
        a = keras.Input((6, 6, 4), name="pixels")
        r1 = L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.25)(a)
        r2 = L.LeakyReLU(negative_slope=0.2)(a)
        r3 = L.PReLU(shared_axes=[1, 2])(a)
        r4 = L.ELU(alpha=0.7)(a)
        r5 = L.PReLU()(a)
        r6 = L.ReLU(negative_slope=0.05)(a)
        m = L.Multiply()([r1, r2])
        d = L.Subtract()([r3, r4])
        mx = L.Maximum()([m, d, r5])
        av = L.Average()([mx, r6, a])
        c = L.Cropping2D(((1, 0), (0, 2)))(av)
        s = L.SeparableConv2D(5, 3, depth_multiplier=2, padding="same", activation="relu")(c)
        s = L.SeparableConv2D(3, (2, 3), strides=2, use_bias=False)(s)
        s = L.SpatialDropout2D(0.3)(s)
        n = L.LayerNormalization(epsilon=1e-2)(s)
        f = L.Flatten()(n)
        h = L.Dense(6)(f)
        h = L.LayerNormalization(center=False)(h)
        y = L.Softmax()(h)
        return keras.Model(a, y, name="new_layers")

    def unet_pixels():
        # A U-Net-shaped segmenter: per-pixel logits (B, H, W, C) for sparse labels (B, H, W).
        x = keras.Input((8, 8, 2), name="image")
        e1 = L.Conv2D(4, 3, padding="same", activation="relu")(x)
        d = L.MaxPooling2D(2)(e1)
        d = L.Conv2D(6, 3, padding="same", use_bias=False)(d)
        d = L.BatchNormalization(momentum=0.9)(d)
        d = L.ReLU()(d)
        u = L.Conv2DTranspose(4, 2, strides=2, padding="same")(d)
        cat = L.Concatenate()([e1, u])
        h = L.Conv2D(4, 3, padding="same", activation="relu")(cat)
        y = L.Conv2D(3, 1)(h)
        return keras.Model(x, y, name="unet_pixels")

    def two_io():
        # Two inputs (an image and a vector), two outputs (class scores and a box), in an order
        # that differs from the layers' creation order.
        img = keras.Input((6, 6, 3), name="image")
        meta = keras.Input((4,), name="meta")
        c = L.Conv2D(4, 3, activation="relu")(img)
        g = L.GlobalAveragePooling2D()(c)
        m = L.Dense(4, activation="tanh")(meta)
        j = L.Concatenate()([g, m])
        box = L.Dense(4, name="box")(j)
        cls = L.Dense(3, activation="softmax", name="classes")(j)
        return keras.Model([meta, img], [cls, box], name="two_io")

    return keras, [
        ("seq_cnn", seq_cnn, None),
        ("func_unet", func_unet, None),
        ("func_misc", func_misc, None),
        ("train_seq", train_seq, ("sgd", "adam")),
        ("train_func", train_func, ("sgd", "adam")),
        ("train_frozen", train_frozen, ("sgd",)),
        ("mobilenet_blocks", mobilenet_blocks, None),
        ("new_layers", new_layers, None),
        ("unet_pixels", unet_pixels, ("sgd",)),
        ("two_io", two_io, None),
    ]


def tf2_models():
    import tf_keras as keras
    from tf_keras import layers as L

    def tf2_seq():
        # No InputLayer: tf.keras 2 records `batch_input_shape` on the first layer.
        return keras.Sequential(
            [
                L.Conv2D(4, 3, padding="same", activation="relu", input_shape=(6, 6, 2)),
                L.BatchNormalization(momentum=0.9, epsilon=0.01),
                L.DepthwiseConv2D(3, depth_multiplier=2),
                L.Conv2DTranspose(3, 3, strides=2, padding="same"),
                L.MaxPooling2D(2),
                L.Flatten(),
                L.Dense(4, activation="softmax"),
            ],
            name="tf2_seq",
        )

    def tf2_func():
        x = keras.Input((6, 6, 2))
        c = L.Conv2D(4, 3, padding="same")(x)
        b = L.BatchNormalization()(c)
        a = L.Add()([c, b])
        cat = L.Concatenate()([a, c])
        u = L.UpSampling2D(2, interpolation="bilinear")(cat)
        p = L.AveragePooling2D(2, padding="same")(u)
        g = L.GlobalAveragePooling2D()(p)
        y = L.Dense(3)(g)
        return keras.Model(x, y, name="tf2_func")

    return keras, [("tf2_seq", tf2_seq, None), ("tf2_func", tf2_func, None)]


def save_npy(path, a):
    np.save(path, np.ascontiguousarray(a))


def endpoint_names(model, key):
    """The layer names of the model's `input_layers` / `output_layers`, in order."""
    config = model.get_config()
    refs = config.get(key)
    if refs is None:  # Sequential: its InputLayer (first in the config) and its last layer
        first = config["layers"][0]
        if key == "input_layers" and first["class_name"] == "InputLayer":
            return [first["config"]["name"]]
        return [model.layers[-1].name] if key == "output_layers" else ["input_layer"]
    if refs and isinstance(refs[0], str):
        refs = [refs]
    return [r[0] for r in refs]


def save_arrays(base, what, names, arrays):
    """One array: BASE.WHAT.npy. Several: BASE.WHAT.npz keyed by layer name, and
    BASE.WHAT.<name>.npy for each."""
    if len(arrays) == 1:
        save_npy(f"{base}.{what}.npy", arrays[0])
        return
    np.savez(f"{base}.{what}.npz", **{n: np.ascontiguousarray(a) for n, a in zip(names, arrays)})
    for n, a in zip(names, arrays):
        save_npy(f"{base}.{what}.{n}.npy", a)


def make(keras, name, build, optimizers, out, seed, manifest):
    keras.backend.clear_session()
    model = build()
    randomize(model, seed)
    rng = np.random.default_rng(seed + 1000)
    n = TRAIN["samples"] if optimizers else 5
    in_names = endpoint_names(model, "input_layers")
    out_names = endpoint_names(model, "output_layers")
    shapes = [tuple(t.shape[1:]) for t in model.inputs]
    xs = [rng.normal(0, 1, (n,) + s).astype(np.float32) for s in shapes]
    ys = model(xs if len(xs) > 1 else xs[0], training=False)
    ys = [np.asarray(y, dtype=np.float32) for y in (ys if isinstance(ys, (list, tuple)) else [ys])]
    base = os.path.join(out, name)
    export(model, base + ".json", base + ".safetensors")
    save_arrays(base, "x", in_names, xs)
    save_arrays(base, "y", out_names, ys)
    entry = dict(samples=n, inputs=in_names, outputs=out_names)
    if len(xs) == 1:
        entry.update(input_shape=list(shapes[0]), output_shape=list(ys[0].shape[1:]))
    else:
        entry.update(
            input_shapes={k: list(s) for k, s in zip(in_names, shapes)},
            output_shapes={k: list(y.shape[1:]) for k, y in zip(out_names, ys)},
        )
    if optimizers:
        # Sparse labels over the last axis: (n,) for class scores, (n, H, W) for per-pixel logits.
        y = ys[0]
        labels = rng.integers(0, y.shape[-1], y.shape[:-1]).astype(np.int32)
        save_npy(base + ".labels.npy", labels)
        initial = [w.numpy() for w in model.weights]
        losses = {}
        for opt_name in optimizers:
            opt = {
                "sgd": lambda: keras.optimizers.SGD(learning_rate=TRAIN["sgd_lr"]),
                "adam": lambda: keras.optimizers.Adam(learning_rate=TRAIN["adam_lr"]),
            }[opt_name]()
            for w, v in zip(model.weights, initial):
                w.assign(v)
            model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            h = model.fit(xs[0], labels, batch_size=TRAIN["batch_size"], epochs=1, shuffle=False, verbose=0)
            losses[opt_name] = float(h.history["loss"][0])
            export(model, base + ".trained.json", base + f".{opt_name}.safetensors")
            os.remove(base + ".trained.json")
        entry.update(losses=losses, optimizers=list(optimizers), **TRAIN)
        entry["label_shape"] = list(labels.shape[1:])
    manifest[name] = entry
    print(f"{name}: {len(model.weights)} weights, x {[x.shape for x in xs]}, y {[y.shape for y in ys]}")


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = argv[1:]
    only = None
    if "--only" in args:
        i = args.index("--only")
        only = set(args[i + 1].split(","))
        del args[i : i + 2]
    out = args[0] if args else os.path.join(root, "tests", "fixtures", "keras")
    os.makedirs(out, exist_ok=True)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    # With --only, the other models' entries (and versions) stay as they were.
    manifest, versions = {}, {}
    old = os.path.join(out, "manifest.json")
    if only and os.path.exists(old):
        with open(old) as f:
            prev = json.load(f)
        manifest, versions = prev.get("models", {}), prev.get("versions", {})
    keras, models = keras3_models()
    if only:
        for m in versions.get("keras"), versions.get("tensorflow"):
            if m not in (None, keras.__version__, tf.__version__):
                print(f"note: the other fixtures were made with {versions}", file=sys.stderr)
    versions.update({"tensorflow": tf.__version__, "keras": keras.__version__})
    for i, (name, build, optimizers) in enumerate(models):
        if only and name not in only:
            continue
        keras.utils.set_random_seed(i)
        make(keras, name, build, optimizers, out, 100 + i, manifest)
        manifest[name]["keras"] = keras.__version__
    if only and not any(n.startswith("tf2_") for n in only):
        models2 = []
    else:
        try:
            keras2, models2 = tf2_models()
        except ImportError:
            print("tf_keras is not installed: skipping the tf.keras 2 fixtures", file=sys.stderr)
            models2 = []
    for i, (name, build, optimizers) in enumerate(models2):
        if only and name not in only:
            continue
        keras2.utils.set_random_seed(50 + i)
        make(keras2, name, build, optimizers, out, 200 + i, manifest)
        manifest[name]["keras"] = "tf_keras " + keras2.__version__
        versions["tf_keras"] = keras2.__version__
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"versions": versions, "models": manifest}, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
