#!/usr/bin/env python3
"""Builds the small embedded data subsets in data/ from the full sets in ../shared/data.

MNIST: the first 4,000 training and the first 1,000 test records, in the original IDX
format, gzipped (byte-identical records; only the count in the header changes).

CIFAR-10: the first 1,000 records of data_batch_1 and the first 200 of test_batch, in the
binary format (1 label byte + 3,072 pixel bytes per record), gzipped.

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


def subset_cifar(src: Path, dst: Path, count: int) -> None:
    raw = gzip.open(src, "rb").read()
    assert len(raw) % 3073 == 0 and count * 3073 <= len(raw)
    with gzip.GzipFile(dst, "wb", compresslevel=9, mtime=0) as f:
        f.write(raw[: count * 3073])
    print(f"{dst.relative_to(OUT.parent)}: {count} records, {dst.stat().st_size} bytes")


(OUT / "cifar10").mkdir(parents=True, exist_ok=True)
subset_cifar(SRC / "cifar10" / "data_batch_1.bin.gz", OUT / "cifar10" / "data_batch_1.bin.gz", 1000)
subset_cifar(SRC / "cifar10" / "test_batch.bin.gz", OUT / "cifar10" / "test_batch.bin.gz", 200)
(OUT / "cifar10" / "batches.meta.txt").write_text((SRC / "cifar10" / "batches.meta.txt").read_text())
