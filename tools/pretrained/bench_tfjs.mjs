// face-api's own inference time (the package's bundled tfjs, CPU backend, in Node) for the two
// models `fovea bench tflite face-api-descriptor|face-api-detector` times, side by side.
//
//   node tools/pretrained/bench_tfjs.mjs [--batch-sizes 1,32] [--runs 3] [CACHE_DIR]
//
// Per model and batch size: the median wall time of forwardInput plus reading the outputs back
// (dataSync) over --runs runs after one warm-up, on the integer-hash pattern of 0-255 pixels.
// The descriptor takes (N, 150, 150, 3), the detector (N, 512, 512, 3). Compare with Fovea's
// figures taken alternating on the same machine (PLATFORM.md: the machines' speed swings).

import { loadFaceApi, defaultCache } from './face_api_node.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const batches = opt('--batch-sizes', '1,32').split(',').map(Number);
const runs = Number(opt('--runs', '3'));
const cache = args[0] || defaultCache();
const { faceapi, tf, weightMap } = await loadFaceApi(cache);

function pattern(n) {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = ((i * 7919) % 251) * (255 / 251);
  return v;
}

async function time(name, side, forward, b) {
  const x = tf.tensor(pattern(b * side * side * 3), [b, side, side, 3]);
  const input = await faceapi.toNetInput(tf.unstack(x));
  const once = () => {
    const t = performance.now();
    tf.tidy(() => forward(input).forEach((y) => y.dataSync()));
    return performance.now() - t;
  };
  once();
  const ms = Array.from({ length: runs }, once).sort((a, b) => a - b)[Math.floor(runs / 2)];
  console.log(`${name} batch ${b}: ${ms.toFixed(1)} ms per run, median of ${runs} (${(ms / b).toFixed(1)} ms per sample)`);
  x.dispose();
}

const rec = new faceapi.FaceRecognitionNet();
rec.loadFromWeightMap(weightMap('face_recognition_model-weights_manifest.json'));
const ssd = new faceapi.SsdMobilenetv1();
ssd.loadFromWeightMap(weightMap('ssd_mobilenetv1_model-weights_manifest.json'));
for (const b of batches) await time('face-api-descriptor', 150, (i) => [rec.forwardInput(i)], b);
for (const b of batches) {
  await time('face-api-detector', 512, (i) => {
    const { boxes, scores } = ssd.forwardInput(i);
    return [...boxes, ...scores];
  }, b);
}
