#!/usr/bin/env python3
"""Reference faces of BlazeFace (short range) for tests/detection.rs, from LiteRT and a decoding
written here from MediaPipe's published graph options (not from Fovea's code):

- SsdAnchorsCalculator (face_detection_short_range): input 128x128, num_layers 4, strides
  8, 16, 16, 16, anchor_offset 0.5, aspect_ratios [1.0] plus interpolated_scale_aspect_ratio 1.0
  (two anchors per layer and cell), fixed_anchor_size: layers of equal stride share one grid, so
  16x16 cells x 2 then 8x8 cells x 6 = 896 anchors, centre ((x + 0.5) / g, (y + 0.5) / g), size 1;
- TensorsToDetectionsCalculator: num_coords 16, reverse_output_order (x, y, w, h), x/y/w/h scale
  128, keypoint offset 4 (six keypoints), sigmoid scores clipped at 100, min_score_thresh 0.5;
- NonMaxSuppressionCalculator: WEIGHTED, IoU, min_suppression_threshold 0.3;
- ImageToTensorCalculator: keep_aspect_ratio (black bars), float range [-1, 1].

    /work/venv-tflite/bin/python tools/pretrained/make_blazeface_fixture.py [--faces TAR]

Writes tests/fixtures/tflite/:
- faces_row.png: AT&T faces s1/1, s5/3 and s12/1 (92x112 grey each) side by side, 276x112;
- faces_row_lb128.u8.npy: that picture letterboxed into 128x128 RGB by Pillow (bilinear);
- blazeface_faces.json: the faces LiteRT's outputs give on the letterboxed input (relative to the
  input: boxes, keypoints, scores) and the same faces in faces_row.png's pixels.
"""

import argparse
import io
import json
import math
import os
import tarfile

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "tflite")
MODEL = os.path.join(ROOT, "data", "pretrained", "face_detection_short_range.tflite")
SIDE = 128


def anchors():
    strides, per_layer, out, i = [8, 16, 16, 16], 2, [], 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        g = math.ceil(SIDE / strides[i])
        for y in range(g):
            for x in range(g):
                out += [((x + 0.5) / g, (y + 0.5) / g)] * (per_layer * (j - i))
        i = j
    return np.array(out)


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / u if u > 0 else 0.0


def faces(x):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=MODEL)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    outs = [it.get_tensor(d["index"])[0].astype(np.float64) for d in it.get_output_details()]
    reg = next(o for o in outs if o.shape[-1] == 16)
    logit = next(o for o in outs if o.shape[-1] == 1)[:, 0]
    score = 1.0 / (1.0 + np.exp(-np.clip(logit, -100.0, 100.0)))
    a = anchors()
    cand = []
    for k in np.argsort(-score, kind="stable"):
        if score[k] < 0.5:
            break
        r = reg[k] / SIDE
        cx, cy, w, h = a[k, 0] + r[0], a[k, 1] + r[1], r[2], r[3]
        kps = [(a[k, 0] + r[4 + 2 * q], a[k, 1] + r[5 + 2 * q]) for q in range(6)]
        cand.append((score[k], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], kps))
    found = []
    while cand:
        best = cand[0]
        group = [c for c in cand if iou(c[1], best[1]) > 0.3]
        cand = [c for c in cand if iou(c[1], best[1]) <= 0.3]
        total = sum(c[0] for c in group)
        box = [sum(c[0] * c[1][i] for c in group) / total for i in range(4)]
        kps = [[sum(c[0] * c[2][q][i] for c in group) / total for i in range(2)] for q in range(6)]
        found.append({"score": float(best[0]), "bbox": box, "keypoints": kps, "merged": len(group)})
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", default=os.path.join(ROOT, "..", "shared", "data", "faces", "att_faces.tar.gz"))
    args = ap.parse_args()
    with tarfile.open(args.faces) as tar:
        parts = [Image.open(io.BytesIO(tar.extractfile(f"att_faces/{m}.pgm").read())) for m in ("s1/1", "s5/3", "s12/1")]
    row = Image.new("L", (sum(p.width for p in parts), parts[0].height))
    x0 = 0
    for p in parts:
        row.paste(p, (x0, 0))
        x0 += p.width
    row.save(os.path.join(OUT, "faces_row.png"), optimize=True)
    rgb = row.convert("RGB")
    W, H = rgb.size
    s = min(SIDE / W, SIDE / H)
    nw, nh = round(W * s), round(H * s)
    ox, oy = (SIDE - nw) // 2, (SIDE - nh) // 2
    canvas = Image.new("RGB", (SIDE, SIDE), (0, 0, 0))
    canvas.paste(rgb.resize((nw, nh), Image.BILINEAR), (ox, oy))
    u8 = np.asarray(canvas, dtype=np.uint8)
    np.save(os.path.join(OUT, "faces_row_lb128.u8.npy"), u8)
    found = faces(u8[None].astype(np.float32) / 127.5 - 1.0)
    to_px = lambda x, y: [(x * SIDE - ox) / s, (y * SIDE - oy) / s]
    pixels = [
        {
            "score": f["score"],
            "bbox": to_px(*f["bbox"][:2]) + to_px(*f["bbox"][2:]),
            "keypoints": [to_px(*k) for k in f["keypoints"]],
        }
        for f in found
    ]
    doc = {
        "made_by": "tools/pretrained/make_blazeface_fixture.py (LiteRT + MediaPipe's published options)",
        "model": "data/pretrained/face_detection_short_range.tflite",
        "input": "faces_row_lb128.u8.npy, RGB scaled to [-1, 1] (v / 127.5 - 1)",
        "faces_relative": found,
        "image": "faces_row.png",
        "letterbox": {"scale": s, "offset_x": ox, "offset_y": oy},
        "faces_pixels": pixels,
    }
    with open(os.path.join(OUT, "blazeface_faces.json"), "w") as f:
        json.dump(doc, f, indent=1)
    for f in pixels:
        print(f"score {f['score']:.4f} box {[round(v, 1) for v in f['bbox']]}")


if __name__ == "__main__":
    main()
