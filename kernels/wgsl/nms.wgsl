// nms.wgsl: per-class greedy non-maximum suppression and the best M detections of each image.
//
// Inputs: in_scores (B, C, K): each class's K candidate scores, sorted best first (as TopK and
// Gather give them); in_boxes (B, C, K, 4): their corners (xmin, ymin, xmax, ymax). Output
// in_out (B, M, 6): rows (xmin, ymin, xmax, ymax, score, class), best first; unused rows -1.
//
//   per class c: walk the candidates in order, stop at the first score not above SCORE or once
//   M are kept; keep a candidate unless a kept one overlaps it with IoU above IOU.
//   then: repeatedly take the best next kept candidate over all classes (the lower class on
//   ties), M times.
//
// Bindings: 0 in_scores, 1 in_boxes (read), 2 in_out (read_write).
// Threading: one 64-invocation workgroup per image (workgroup (x, y) handles image
// x + y * GRID_X; surplus workgroups of the 2-D grid redo the last image without storing, so
// every barrier stays in uniform control flow). Invocation 0 decides candidate i (kept,
// suppressed, or the end of the class) and publishes it through workgroupUniformLoad; when i is
// kept, all 64 invocations test the later candidates against it and set their bits in the
// suppression mask (one bit per candidate, WORDS words, atomicOr). Kept indices live in
// workgroup memory (C * M of them); invocation 0 merges the classes' lists at the end. The
// loop over candidates is sequential by nature (each decision depends on the previous ones),
// two barriers per candidate visited.

const B: u32 = {{B}}u;
const C: u32 = {{C}}u;
const K: u32 = {{K}}u;
const M: u32 = {{M}}u;
const WORDS: u32 = {{WORDS}}u;
const IOU: f32 = {{IOU}};
const SCORE: f32 = {{SCORE}};

@group(0) @binding(0) var<storage, read> in_scores: array<f32>;
@group(0) @binding(1) var<storage, read> in_boxes: array<f32>;
@group(0) @binding(2) var<storage, read_write> in_out: array<f32>;

var<workgroup> in_suppressed: array<atomic<u32>, WORDS>;
var<workgroup> in_keep: array<u32, {{KEEP}}>;
var<workgroup> in_kept: array<u32, C>;
var<workgroup> in_flag: u32;

fn box_at(i: u32) -> vec4<f32> {
    return vec4<f32>(in_boxes[i * 4u], in_boxes[i * 4u + 1u], in_boxes[i * 4u + 2u], in_boxes[i * 4u + 3u]);
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

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let img_id = wid.x + wid.y * {{GRID_X}}u;
    let img = min(img_id, B - 1u);
    let t = lid.x;
    for (var c = 0u; c < C; c++) {
        for (var w = t; w < WORDS; w += 64u) {
            atomicStore(&in_suppressed[w], 0u);
        }
        if (t == 0u) {
            in_kept[c] = 0u;
        }
        workgroupBarrier();
        let row = (img * C + c) * K;
        for (var i = 0u; i < K; i++) {
            if (t == 0u) {
                let s = in_scores[row + i];
                var f = 0u;
                if (!(s > SCORE) || in_kept[c] >= M) {
                    f = 2u;
                } else if ((atomicLoad(&in_suppressed[i / 32u]) & (1u << (i % 32u))) == 0u) {
                    f = 1u;
                    in_keep[c * M + in_kept[c]] = i;
                    in_kept[c] = in_kept[c] + 1u;
                }
                in_flag = f;
            }
            let f = workgroupUniformLoad(&in_flag);
            if (f == 2u) {
                break;
            }
            if (f == 1u) {
                let bi = box_at(row + i);
                for (var j = i + 1u + t; j < K; j += 64u) {
                    if (box_iou(bi, box_at(row + j)) > IOU) {
                        atomicOr(&in_suppressed[j / 32u], 1u << (j % 32u));
                    }
                }
            }
            workgroupBarrier();
        }
        workgroupBarrier();
    }
    if (t == 0u && img_id < B) {
        var heads: array<u32, C>;
        for (var slot = 0u; slot < M; slot++) {
            var best = C;
            var best_score = 0.0;
            for (var c = 0u; c < C; c++) {
                if (heads[c] < in_kept[c]) {
                    let s = in_scores[(img * C + c) * K + in_keep[c * M + heads[c]]];
                    if (best == C || s > best_score) {
                        best = c;
                        best_score = s;
                    }
                }
            }
            let o = (img * M + slot) * 6u;
            if (best == C) {
                for (var q = 0u; q < 6u; q++) {
                    in_out[o + q] = -1.0;
                }
                continue;
            }
            let i = in_keep[best * M + heads[best]];
            heads[best] = heads[best] + 1u;
            let b = box_at((img * C + best) * K + i);
            in_out[o] = b.x;
            in_out[o + 1u] = b.y;
            in_out[o + 2u] = b.z;
            in_out[o + 3u] = b.w;
            in_out[o + 4u] = best_score;
            in_out[o + 5u] = f32(best);
        }
    }
}
