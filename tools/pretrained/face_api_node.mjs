// Loads @vladmandic/face-api's own runtime (its ESM bundle with tfjs, CPU backend) in Node, for
// the fixture and timing scripts beside it.
//
// Why the patch: the package's ESM bundle includes tfjs with Node's `util` module replaced by an
// empty stub (it targets browsers), so tfjs's Node platform fails to construct
// (`this.util.TextEncoder is not a constructor`). loadFaceApi imports a copy of the bundle whose
// stub returns Node's real `util`; nothing else changes.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';

/** The cache folder of tools/pretrained/fetch.sh. */
export function defaultCache() {
  return process.env.FOVEA_PRETRAINED_DIR || path.join(os.homedir(), '.cache', 'fovea', 'pretrained');
}

/** `{ faceapi, tf, weightMap }`: the package, its tfjs, and a reader of a weights manifest in
 * `cache` (decoded by tfjs's own `tf.io.decodeWeights`). */
export async function loadFaceApi(cache) {
  const shim = 'AR=Vt(()=>{})';
  let bundle = fs.readFileSync(path.join(cache, 'face-api.esm.js'), 'utf8');
  if (!bundle.includes(shim)) throw new Error(`face-api.esm.js: the util stub '${shim}' was not found`);
  bundle = bundle.replace(shim, 'AR=Vt((e,t)=>{t.exports=globalThis.__foveaNodeUtil})');
  globalThis.__foveaNodeUtil = util;
  const patched = path.join(os.tmpdir(), `fovea-face-api-${process.pid}.mjs`);
  fs.writeFileSync(patched, bundle);
  const faceapi = await import(patched);
  fs.unlinkSync(patched);
  const tf = faceapi.tf;
  await tf.setBackend('cpu');
  await tf.ready();
  console.log(`face-api ${faceapi.version}, tfjs ${tf.version_core}, backend ${tf.getBackend()}`);
  const weightMap = (manifest) => {
    const m = JSON.parse(fs.readFileSync(path.join(cache, manifest), 'utf8'));
    const map = {};
    for (const group of m) {
      const all = Buffer.concat(group.paths.map((p) => fs.readFileSync(path.join(cache, p))));
      const ab = all.buffer.slice(all.byteOffset, all.byteOffset + all.length);
      Object.assign(map, tf.io.decodeWeights(ab, group.weights));
    }
    return map;
  };
  return { faceapi, tf, weightMap };
}
