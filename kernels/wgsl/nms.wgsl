// nms.wgsl: per-class greedy non-maximum suppression and the best M detections of each image.
//
// Inputs: nms_scores (B, C, K): each class's K candidate scores, sorted best first (as TopK and
// Gather give them); nms_boxes (B, C, K, 4): their corners (xmin, ymin, xmax, ymax). Output
// nms_out (B, M, 6): rows (xmin, ymin, xmax, ymax, score, class), best first; unused rows -1.
//
//   per class c: walk the candidates in order, stop at the first score not above SCORE or once
//   M are kept; keep a candidate unless a kept one overlaps it with IoU above IOU.
//   then: repeatedly take the best next kept candidate over all classes (the lower class on
//   ties), M times.
//
// Bindings: 0 nms_scores, 1 nms_boxes (read), 2 nms_out (read_write).
// Threading: one 64-invocation workgroup per image (workgroup (x, y) handles image
// x + y * GRID_X; surplus workgroups of the 2-D grid redo the last image without storing, so
// every barrier stays in uniform control flow). Invocation 0 walks past the suppressed
// candidates to the next kept one (or the end of the class) and publishes it through
// workgroupUniformLoad; all 64 invocations then test the later candidates against it and set
// their bits in the class's suppression mask (one bit per candidate, WORDS words per class,
// atomicOr). A class's kept candidates are then exactly the unsuppressed ones before its end
// (nms_end), so no list of kept indices is stored; invocation 0 merges the classes at the end.
// The walk is sequential by nature (each decision depends on the previous ones): two barriers
// per kept candidate, none for a suppressed one.

const B: u32 = {{B}}u;
const C: u32 = {{C}}u;
const K: u32 = {{K}}u;
const M: u32 = {{M}}u;
const WORDS: u32 = {{WORDS}}u;
const IOU: f32 = {{IOU}};
const SCORE: f32 = {{SCORE}};

@group(0) @binding(0) var<storage, read> nms_scores: array<f32>;
@group(0) @binding(1) var<storage, read> nms_boxes: array<f32>;
@group(0) @binding(2) var<storage, read_write> nms_out: array<f32>;

var<workgroup> nms_suppressed: array<atomic<u32>, {{MASK_WORDS}}>;
var<workgroup> nms_end: array<u32, C>;
var<workgroup> nms_flag: u32;

fn box_at(i: u32) -> vec4<f32> {
    return vec4<f32>(nms_boxes[i * 4u], nms_boxes[i * 4u + 1u], nms_boxes[i * 4u + 2u], nms_boxes[i * 4u + 3u]);
}

fn box_iou(a: vec4<f32>, b: vec4<f32>) -> f32 {
    let area_a = max(a.z - a.x, 0.0) * max(a.w - a.y, 0.0);
    let area_b = max(b.z - b.x, 0.0) * max(b.w - b.y, 0.0);
    let iw = max(min(a.z, b.z) - max(a.x, b.x), 0.0);
    let ih = max(min(a.w, b.w) - max(a.y, b.y), 0.0);
    let inter = iw * ih;
    let either = area_a + area_b - inter;
    if (either > 0.0) {
        return inter / either;
    }
    return 0.0;
}

// Whether candidate i of class c was suppressed (only invocation 0 calls it, after barriers).
fn suppressed(c: u32, i: u32) -> bool {
    return (atomicLoad(&nms_suppressed[c * WORDS + i / 32u]) & (1u << (i % 32u))) != 0u;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let img_id = wid.x + wid.y * {{GRID_X}}u;
    let img = min(img_id, B - 1u);
    let t = lid.x;
    for (var w = t; w < C * WORDS; w += 64u) {
        atomicStore(&nms_suppressed[w], 0u);
    }
    workgroupBarrier();
    for (var c = 0u; c < C; c++) {
        let row = (img * C + c) * K;
        var kept = 0u;
        if (t == 0u) {
            nms_end[c] = K;
        }
        var i = 0u;
        loop {
            if (t == 0u) {
                // Skip the suppressed candidates: only a kept one needs the workgroup.
                while (i < K && nms_scores[row + i] > SCORE && kept < M && suppressed(c, i)) {
                    i = i + 1u;
                }
                var next = i;
                if (i >= K || !(nms_scores[row + i] > SCORE) || kept >= M) {
                    nms_end[c] = i;
                    next = K;
                } else {
                    kept = kept + 1u;
                }
                nms_flag = next;
            }
            let k = workgroupUniformLoad(&nms_flag);
            if (k >= K) {
                break;
            }
            let bk = box_at(row + k);
            for (var j = k + 1u + t; j < K; j += 64u) {
                if (box_iou(bk, box_at(row + j)) > IOU) {
                    atomicOr(&nms_suppressed[c * WORDS + j / 32u], 1u << (j % 32u));
                }
            }
            workgroupBarrier();
            if (t == 0u) {
                i = k + 1u;
            }
        }
        workgroupBarrier();
    }
    if (t == 0u && img_id < B) {
        // heads[c]: the next candidate of class c not yet written (kept or not).
        var heads: array<u32, C>;
        for (var slot = 0u; slot < M; slot++) {
            var best = C;
            var best_score = 0.0;
            for (var c = 0u; c < C; c++) {
                var h = heads[c];
                while (h < nms_end[c] && suppressed(c, h)) {
                    h = h + 1u;
                }
                heads[c] = h;
                if (h < nms_end[c]) {
                    let s = nms_scores[(img * C + c) * K + h];
                    if (best == C || s > best_score) {
                        best = c;
                        best_score = s;
                    }
                }
            }
            let o = (img * M + slot) * 6u;
            if (best == C) {
                for (var q = 0u; q < 6u; q++) {
                    nms_out[o + q] = -1.0;
                }
                continue;
            }
            let i = heads[best];
            heads[best] = i + 1u;
            let b = box_at((img * C + best) * K + i);
            nms_out[o] = b.x;
            nms_out[o + 1u] = b.y;
            nms_out[o + 2u] = b.z;
            nms_out[o + 3u] = b.w;
            nms_out[o + 4u] = best_score;
            nms_out[o + 5u] = f32(best);
        }
    }
}
