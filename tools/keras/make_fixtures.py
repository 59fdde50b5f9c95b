#!/usr/bin/env python3
"""Make the Keras interchange fixtures of tests/keras_interchange.rs.

Usage (TensorFlow on the CPU is enough):
    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu tf_keras
    /tmp/tfenv/bin/python tools/keras/make_fixtures.py [OUT_DIR]   # default tests/fixtures/keras

For every model NAME it writes, with seeded random weights (non-trivial BatchNormalization
statistics) and seeded random inputs:
    NAME.json             model.to_json()
    NAME.safetensors      the weights, named <layer>/<variable> (see export.py)
    NAME.x.npy            inputs (float32)
    NAME.y.npy            Keras's outputs for them (inference mode)
and for the training models also
    NAME.labels.npy       int32 class labels of the inputs
    NAME.sgd.safetensors  weights after one epoch of SGD (no shuffle, batch 8)
    NAME.adam.safetensors weights after one epoch of Adam (no shuffle, batch 8)
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

    return keras, [
        ("seq_cnn", seq_cnn, False),
        ("func_unet", func_unet, False),
        ("func_misc", func_misc, False),
        ("train_seq", train_seq, True),
        ("train_func", train_func, True),
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

    return keras, [("tf2_seq", tf2_seq, False), ("tf2_func", tf2_func, False)]


def save_npy(path, a):
    np.save(path, np.ascontiguousarray(a))


def make(keras, name, build, trainable, out, seed, manifest):
    keras.backend.clear_session()
    model = build()
    randomize(model, seed)
    rng = np.random.default_rng(seed + 1000)
    n = TRAIN["samples"] if trainable else 5
    shape = tuple(model.inputs[0].shape[1:])
    x = rng.normal(0, 1, (n,) + shape).astype(np.float32)
    y = model(x, training=False).numpy().astype(np.float32)
    base = os.path.join(out, name)
    export(model, base + ".json", base + ".safetensors")
    save_npy(base + ".x.npy", x)
    save_npy(base + ".y.npy", y)
    entry = dict(input_shape=list(shape), samples=n, output_shape=list(y.shape[1:]))
    if trainable:
        classes = y.shape[-1]
        labels = rng.integers(0, classes, n).astype(np.int32)
        save_npy(base + ".labels.npy", labels)
        initial = [w.numpy() for w in model.weights]
        losses = {}
        for opt_name, opt in (
            ("sgd", keras.optimizers.SGD(learning_rate=TRAIN["sgd_lr"])),
            ("adam", keras.optimizers.Adam(learning_rate=TRAIN["adam_lr"])),
        ):
            for w, v in zip(model.weights, initial):
                w.assign(v)
            model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            h = model.fit(x, labels, batch_size=TRAIN["batch_size"], epochs=1, shuffle=False, verbose=0)
            losses[opt_name] = float(h.history["loss"][0])
            export(model, base + ".trained.json", base + f".{opt_name}.safetensors")
            os.remove(base + ".trained.json")
        entry.update(losses=losses, **TRAIN)
    manifest[name] = entry
    print(f"{name}: {len(model.weights)} weights, x {x.shape}, y {y.shape}")


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = argv[1] if len(argv) > 1 else os.path.join(root, "tests", "fixtures", "keras")
    os.makedirs(out, exist_ok=True)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    manifest = {}
    keras, models = keras3_models()
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
    for i, (name, build, trainable) in enumerate(models):
        keras.utils.set_random_seed(i)
        make(keras, name, build, trainable, out, 100 + i, manifest)
        manifest[name]["keras"] = keras.__version__
    try:
        keras2, models2 = tf2_models()
    except ImportError:
        print("tf_keras is not installed: skipping the tf.keras 2 fixtures", file=sys.stderr)
        models2 = []
    for i, (name, build, trainable) in enumerate(models2):
        keras2.utils.set_random_seed(50 + i)
        make(keras2, name, build, trainable, out, 200 + i, manifest)
        manifest[name]["keras"] = "tf_keras " + keras2.__version__
        versions["tf_keras"] = keras2.__version__
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"versions": versions, "models": manifest}, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
