#!/usr/bin/env python3
"""Builds the small embedded vision subsets in data/ from the full sets in ../shared/data.

raccoon/: five photos (byte-identical JPEGs, one of them grayscale), their Pascal VOC XML
          files (byte-identical), the matching rows of the train and test CSV files, and the
          source repository's MIT LICENSE.
membrane/: the top-left 128x128 crop of ISBI-2012 training slice 0 and of its label
          (re-encoded as 8-bit grayscale PNG, pixel values unchanged).
faces/:   subjects s1 and s2 of the AT&T faces (20 PGMs, byte-identical) in a tar.gz laid out
          as the original (att_faces/sN/M.pgm).

Uses only the Python standard library. Usage:
python3 tools/make_embedded_vision_data.py [SHARED_DATA_DIR]
"""
import gzip
import io
import shutil
import struct
import sys
import tarfile
import zlib
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data")
OUT = Path(__file__).resolve().parents[1] / "data"

# --- raccoon -----------------------------------------------------------------------------
RACCOONS = ["raccoon-150", "raccoon-151", "raccoon-31", "raccoon-39", "raccoon-125"]
src, dst = SRC / "raccoon", OUT / "raccoon"
for sub in ["images", "annotations", "data"]:
    (dst / sub).mkdir(parents=True, exist_ok=True)
for name in RACCOONS:
    shutil.copyfile(src / "images" / f"{name}.jpg", dst / "images" / f"{name}.jpg")
    shutil.copyfile(src / "annotations" / f"{name}.xml", dst / "annotations" / f"{name}.xml")
shutil.copyfile(src / "LICENSE", dst / "LICENSE")
wanted = {f"{n}.jpg" for n in RACCOONS}
for csv_name in ["train_labels.csv", "test_labels.csv"]:
    lines = (src / "data" / csv_name).read_text().splitlines()
    kept = [lines[0]] + [l for l in lines[1:] if l.split(",")[0] in wanted]
    (dst / "data" / csv_name).write_text("\n".join(kept) + "\n")
    print(f"raccoon/data/{csv_name}: {len(kept) - 1} rows")


# --- membrane ----------------------------------------------------------------------------
def read_gray_png(path: Path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour == 0 and interlace == 0, (path, depth, colour)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    rows, prev = [], bytearray(w)
    for y in range(h):
        f, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1 : (y + 1) * (w + 1)])
        for x in range(w):
            a = line[x - 1] if x else 0
            b, c = prev[x], (prev[x - 1] if x else 0)
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return rows


def write_gray_png(path: Path, rows) -> None:
    h, w = len(rows), len(rows[0])
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + r for r in rows)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


for part in ["image", "label"]:
    rows = read_gray_png(SRC / "membrane" / "train" / part / "0.png")
    out = OUT / "membrane" / part
    out.mkdir(parents=True, exist_ok=True)
    write_gray_png(out / "0.png", [r[:128] for r in rows[:128]])
    print(f"membrane/{part}/0.png: {(out / '0.png').stat().st_size} bytes")

# --- faces -------------------------------------------------------------------------------
(OUT / "faces").mkdir(parents=True, exist_ok=True)
buf = io.BytesIO()
with tarfile.open(SRC / "faces" / "att_faces.tar.gz") as src_tar, tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as out_tar:
    members = [m for m in src_tar.getmembers() if m.isfile() and m.name.split("/")[1:2] in (["s1"], ["s2"])]
    for m in sorted(members, key=lambda m: m.name):
        m.mtime, m.uid, m.gid, m.uname, m.gname = 765158400, 0, 0, "", ""
        out_tar.addfile(m, src_tar.extractfile(m))
dst = OUT / "faces" / "att_faces_s1_s2.tar.gz"
with gzip.GzipFile(dst, "wb", compresslevel=9, mtime=0) as f:
    f.write(buf.getvalue())
print(f"faces/att_faces_s1_s2.tar.gz: {len(members)} members, {dst.stat().st_size} bytes")
