#!/usr/bin/env python3
"""Builds the small embedded data subsets in data/ from the full sets in ../shared/data.

MNIST: the first 4,000 training and the first 1,000 test records, in the original IDX
format, gzipped (byte-identical records; only the count in the header changes).

Usage: python3 tools/make_embedded_data.py [SHARED_DATA_DIR]
"""
import gzip
import struct
import sys
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data")
OUT = Path(__file__).resolve().parents[1] / "data"


def subset_idx(src: Path, dst: Path, count: int) -> None:
    raw = gzip.open(src, "rb").read()
    magic, n = struct.unpack(">II", raw[:8])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    header = 4 + 4 * ndim
    per = 1
    for d in dims[1:]:
        per *= d
    assert count <= n
    body = raw[header : header + count * per]
    out = struct.pack(">I", magic) + struct.pack(">I", count) + raw[8:header] + body
    dst.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(dst, "wb", compresslevel=9, mtime=0) as f:
        f.write(out)
    print(f"{dst.relative_to(OUT.parent)}: {count} records, {dst.stat().st_size} bytes")


for kind, count in [("train", 4000), ("t10k", 1000)]:
    for part in ["images-idx3", "labels-idx1"]:
        name = f"{kind}-{part}-ubyte.gz"
        subset_idx(SRC / "mnist" / name, OUT / "mnist" / name, count)
