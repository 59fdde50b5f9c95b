// Reference outputs of face-api's descriptor and SSD face detector, computed by the package's
// own code and bundled tfjs (CPU backend) in Node, for tests/tfjs_import.rs.
//
//   tools/pretrained/fetch.sh                      # the cache: manifests, shards, face-api.esm.js
//   node tools/pretrained/make_tfjs_fixtures.mjs [CACHE_DIR] [ORL_TAR_GZ]
//
// CACHE_DIR defaults to $FOVEA_PRETRAINED_DIR or ~/.cache/fovea/pretrained; ORL_TAR_GZ to
// ../shared/data/faces/att_faces.tar.gz. Writes tests/fixtures/tfjs/:
// - orl_s1_1.u8.npy: ORL face s1/1.pgm (92x112 grey), padded to a centred square and resized
//   to 150x150 by tfjs's resizeBilinear (as face-api's toBatchTensor does), rounded to uint8;
// - descriptor_*.f32.npy: FaceRecognitionNet.forwardInput on the integer-hash input (2 images)
//   and on the ORL face (grey in all three channels);
// - ssd_*.f32.npy: SsdMobilenetv1.forwardInput's scores (and decoded boxes) on the hash input and
//   on tests/fixtures/tflite/photo128.u8.npy (person.jpg at 128x128) repeated 4x4 to 512x512;
//   and on ORL face s1/1 centred on a grey canvas (orl_s1_1_canvas128.u8.npy, repeated 4x4);
//   plus locateFaces' detections of each in manifest.json;
// - manifest.json: every case's input, output files and shapes.
// Inputs are 0-255 pixel values, as face-api takes them; Fovea's models take value / 255.
//
// The package's runtime is loaded by face_api_node.mjs (which explains the one patch it needs);
// the weights are decoded by tfjs's own `tf.io.decodeWeights`, independently of Fovea's reader.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { loadFaceApi, defaultCache } from './face_api_node.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const out = path.join(root, 'tests', 'fixtures', 'tfjs');
const cache = process.argv[2] || defaultCache();
const orlTar = process.argv[3] || path.resolve(root, '..', 'shared', 'data', 'faces', 'att_faces.tar.gz');
const { faceapi, tf, weightMap } = await loadFaceApi(cache);

// ---- npy in and out ----
function writeNpy(file, data, shape, descr) {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(path.join(out, file), Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}
function readNpyU8(file) {
  const b = fs.readFileSync(file);
  const len = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + len).toString('latin1');
  if (!header.includes("'|u1'")) throw new Error(`${file}: expected uint8`);
  const shape = header.match(/\((.*?)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  return { shape, data: new Uint8Array(b.subarray(10 + len)) };
}

// The integer-hash input of make_fixtures.py and the Rust tests, in float32 steps.
function hashInput(n, seed, lo, hi) {
  const v = new Float32Array(n);
  const f = Math.fround;
  for (let i = 0; i < n; i++) {
    const h = Math.floor(((i * 2654435761 + seed) % 4294967296) / 256);
    v[i] = f(f(lo) + f(f(hi - lo) * f(h / 16777216)));
  }
  return v;
}

// ---- the ORL face ----
function orlFace(member) {
  const tar = zlib.gunzipSync(fs.readFileSync(orlTar));
  for (let off = 0; off + 512 <= tar.length;) {
    const name = tar.subarray(off, off + 100).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(tar.subarray(off + 124, off + 136).toString('latin1').trim() || '0', 8);
    if (!name) break;
    if (name.endsWith(member)) {
      const pgm = tar.subarray(off + 512, off + 512 + size);
      const m = pgm.toString('latin1', 0, 32).match(/^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/);
      const [w, h] = [Number(m[1]), Number(m[2])];
      return { w, h, px: new Uint8Array(pgm.subarray(m[0].length, m[0].length + w * h)) };
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${orlTar}: no member ending ${member}`);
}

fs.mkdirSync(out, { recursive: true });
const manifest = { package: '@vladmandic/face-api@1.7.15', tfjs: tf.version_core, backend: 'cpu', descriptor: [], ssd: [] };

// ---- descriptor ----
const rec = new faceapi.FaceRecognitionNet();
rec.loadFromWeightMap(weightMap('face_recognition_model-weights_manifest.json'));
{
  const shape = [2, 150, 150, 3];
  const x = tf.tensor(hashInput(150 * 150 * 3 * 2, 7, 0, 255), shape);
  const y = rec.forwardInput(await faceapi.toNetInput(tf.unstack(x)));
  writeNpy('descriptor_hash.f32.npy', y.dataSync(), y.shape, '<f4');
  manifest.descriptor.push({ name: 'hash', input: { kind: 'hash', shape, seed: 7, lo: 0, hi: 255 }, output: 'descriptor_hash.f32.npy', shape: y.shape });
}
{
  const face = orlFace('s1/1.pgm');
  const g = tf.tensor(Float32Array.from(face.px), [1, face.h, face.w, 1]);
  const side = Math.max(face.w, face.h);
  const padW = side - face.w;
  // face-api's padToSquare(isCenterImage = true) pads the short side on both sides with zeros
  const sq = tf.pad(g, [[0, 0], [0, 0], [Math.floor(padW / 2), padW - Math.floor(padW / 2)], [0, 0]]);
  const r = tf.image.resizeBilinear(sq, [150, 150], false, false);
  const u8 = Uint8Array.from(r.dataSync(), (v) => Math.min(255, Math.max(0, Math.round(v))));
  writeNpy('orl_s1_1.u8.npy', u8, [150, 150], '|u1');
  const rgb = tf.tile(tf.tensor(Float32Array.from(u8), [1, 150, 150, 1]), [1, 1, 1, 3]);
  const y = rec.forwardInput(await faceapi.toNetInput(tf.unstack(rgb)));
  writeNpy('descriptor_orl.f32.npy', y.dataSync(), y.shape, '<f4');
  manifest.descriptor.push({ name: 'orl', input: { kind: 'grey', file: 'orl_s1_1.u8.npy' }, output: 'descriptor_orl.f32.npy', shape: y.shape });
}

// ---- SSD detector ----
const ssd = new faceapi.SsdMobilenetv1();
ssd.loadFromWeightMap(weightMap('ssd_mobilenetv1_model-weights_manifest.json'));
// The decoded boxes (82 KB) are kept for the photo and the face only, to keep fixtures small.
async function runSsd(name, x, input, withBoxes = true) {
  const { boxes, scores } = ssd.forwardInput(await faceapi.toNetInput(x));
  const s = scores[0].dataSync();
  if (withBoxes) writeNpy(`ssd_${name}_boxes.f32.npy`, boxes[0].dataSync(), boxes[0].shape, '<f4');
  writeNpy(`ssd_${name}_scores.f32.npy`, s, scores[0].shape, '<f4');
  const found = await ssd.locateFaces(x, { minConfidence: 0.5, maxResults: 100 });
  const faces = found.map((d) => ({ score: d.score, x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height }));
  console.log(`ssd ${name}: max score ${Math.max(...s).toFixed(4)}, ${faces.length} face(s)`, faces);
  const files = withBoxes ? { boxes: `ssd_${name}_boxes.f32.npy` } : {};
  manifest.ssd.push({ name, input, ...files, scores: `ssd_${name}_scores.f32.npy`, faces });
}
await runSsd('hash', tf.tensor(hashInput(512 * 512 * 3, 11, 0, 255), [512, 512, 3]), { kind: 'hash', shape: [1, 512, 512, 3], seed: 11, lo: 0, hi: 255 }, false);
{
  const photo = readNpyU8(path.join(root, 'tests', 'fixtures', 'tflite', 'photo128.u8.npy'));
  const [h, w] = photo.shape;
  const px = new Float32Array(512 * 512 * 3);
  for (let y = 0; y < 512; y++) for (let x = 0; x < 512; x++) for (let c = 0; c < 3; c++) {
    px[(y * 512 + x) * 3 + c] = photo.data[((Math.floor(y / 4)) * w + Math.floor(x / 4)) * 3 + c];
  }
  if (h !== 128 || w !== 128) throw new Error('photo128.u8.npy is not 128x128');
  await runSsd('photo', tf.tensor(px, [512, 512, 3]), { kind: 'photo', file: '../tflite/photo128.u8.npy', repeat: 4 });
}
{
  // The ORL face centred on a mid-grey canvas twice its height, 128x128, repeated 4x4 to 512x512.
  const face = orlFace('s1/1.pgm');
  const side = 2 * face.h;
  const canvas = new Float32Array(side * side).fill(128);
  const [top, left] = [(side - face.h) / 2, (side - face.w) / 2];
  for (let y = 0; y < face.h; y++) for (let x = 0; x < face.w; x++) canvas[(top + y) * side + left + x] = face.px[y * face.w + x];
  const r = tf.image.resizeBilinear(tf.tensor(canvas, [1, side, side, 1]), [128, 128], false, false);
  const u8 = Uint8Array.from(r.dataSync(), (v) => Math.min(255, Math.max(0, Math.round(v))));
  writeNpy('orl_s1_1_canvas128.u8.npy', u8, [128, 128], '|u1');
  const px = new Float32Array(512 * 512 * 3);
  for (let y = 0; y < 512; y++) for (let x = 0; x < 512; x++) for (let c = 0; c < 3; c++) {
    px[(y * 512 + x) * 3 + c] = u8[Math.floor(y / 4) * 128 + Math.floor(x / 4)];
  }
  await runSsd('face', tf.tensor(px, [512, 512, 3]), { kind: 'grey', file: 'orl_s1_1_canvas128.u8.npy', repeat: 4 });
}
fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
console.log(`wrote ${out}`);
