// softmax_ce.wgsl: softmax cross-entropy over the last axis (SoftmaxCrossEntropy) or its
// gradient with respect to the logits (SoftmaxCrossEntropyGrad), for row-major logits x and
// labels t of the same shape seen as ROWS rows of L classes.
//
//   row_max = max_c x[c];  k = #{c : x[c] == row_max};  e[c] = exp(x[c] - row_max)
//   r = sum_c e[c] - 1 = (sum_{x[c] < row_max} e[c]) + (k - 1)   (the row sum is 1 + r)
//   t_sum = sum_c t[c];    tmx = sum_c t[c] * (row_max - x[c])
//   loss:      y[row] = tmx + t_sum * log1p(r)
//   gradient:  dx[c] = ((e[c] * t_sum - t[c]) - t[c] * r) / (1 + r) * dloss[row]
//              (= (softmax(x)[c] * t_sum - t[c]) * dloss[row])
// Accuracy for confident rows: the row sum is carried as 1 + r with r summed apart from the
// maximum's exact 1, and log1p(r) is a series for small r, so a loss or gradient of 1e-5 (a
// correct prediction with a large margin) keeps f32 precision instead of the ~1e-7 absolute
// error of log(1 + r) or softmax - 1; row_max - x[c] is exact for logits close to the maximum.
// Both ops share the two reduction passes (max, then the four sums as a vec4 (rest, k, t_sum,
// tmx)); STORE substitutes the op's store hook ce_store(row, base, first, stride, row_max, r,
// sums), which writes the row's loss (only the invocation with first == 0) or its L gradients
// j = first, first + stride, ...
// Bindings: 0 ce_x logits (read), 1 ce_t labels (read), then for the loss 2 ce_y (ROWS) the
// per-row loss (read_write); for the gradient 2 ce_dloss (ROWS) (read), 3 ce_dx (ROWS, L)
// (read_write). OUT_DECLS substitutes the declarations after binding 1.
// Two entry points, chosen by row length and adapter class like softmax's (softmax_ce.rs):
//   softmax_ce_workgroup  one 64-invocation workgroup per row: each invocation strides over the
//                         row (j = lid, lid + 64, ...; any L), tree reductions in workgroup
//                         memory give the max, then the four sums at once. Workgroup (x, y)
//                         handles row x + y * GRID_X; surplus workgroups of the 2-D grid redo
//                         the last row without storing, so every barrier stays in uniform
//                         control flow.
//   softmax_ce_thread     one invocation per row, passes over it in registers; the row index is
//                         folded into a 2-D grid of WG-wide workgroups (INDEX). For short rows
//                         (C = 10 classes), and on CPU adapters where barriers are expensive.

const ROWS: u32 = {{ROWS}}u;
const L: u32 = {{L}}u;

@group(0) @binding(0) var<storage, read> ce_x: array<f32>;
@group(0) @binding(1) var<storage, read> ce_t: array<f32>;
{{OUT_DECLS}}

var<workgroup> ce_red: array<vec4<f32>, 64>;

// log(1 + r) for r >= 0: a 7-term series (relative error below 1e-9) under 1/16, where
// log(1 + r) would lose r's low bits; log above.
fn ce_log1p(r: f32) -> f32 {
    if (r < 0.0625) {
        return r * (1.0 - r * (0.5 - r * (0.33333334 - r * (0.25 - r * (0.2 - r * (0.16666667 - r * 0.14285715))))));
    }
    return log(1.0 + r);
}

// The pass-2 terms of logit v with label l: (e if v < row_max, 1 if v == row_max, l,
// l * (row_max - v)).
fn ce_terms(v: f32, l: f32, row_max: f32) -> vec4<f32> {
    let below = v < row_max;
    return vec4<f32>(select(0.0, exp(v - row_max), below), select(1.0, 0.0, below), l, l * (row_max - v));
}

{{STORE}}

@compute @workgroup_size(64, 1, 1)
fn softmax_ce_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row_id = wid.x + wid.y * {{GRID_X}}u;
    let row = min(row_id, ROWS - 1u);
    let base = row * L;
    let t = lid.x;
    var part_max: f32 = {{NEG_INF}};
    for (var j = t; j < L; j += 64u) {
        part_max = max(part_max, ce_x[base + j]);
    }
    ce_red[t].x = part_max;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s / 2u) {
        if (t < s) {
            ce_red[t].x = max(ce_red[t].x, ce_red[t + s].x);
        }
        workgroupBarrier();
    }
    let row_max = ce_red[0].x;
    workgroupBarrier();
    var part = vec4<f32>(0.0, 0.0, 0.0, 0.0);
    for (var j = t; j < L; j += 64u) {
        part = part + ce_terms(ce_x[base + j], ce_t[base + j], row_max);
    }
    ce_red[t] = part;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s / 2u) {
        if (t < s) {
            ce_red[t] = ce_red[t] + ce_red[t + s];
        }
        workgroupBarrier();
    }
    let sums = ce_red[0];
    if (row_id < ROWS) {
        ce_store(row, base, t, 64u, row_max, sums.x + (sums.y - 1.0), sums);
    }
}

@compute @workgroup_size({{WG}}, 1, 1)
fn softmax_ce_thread(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = {{INDEX}};
    if (row >= ROWS) {
        return;
    }
    let base = row * L;
    var row_max: f32 = {{NEG_INF}};
    for (var j = 0u; j < L; j++) {
        row_max = max(row_max, ce_x[base + j]);
    }
    var sums = vec4<f32>(0.0, 0.0, 0.0, 0.0);
    for (var j = 0u; j < L; j++) {
        sums = sums + ce_terms(ce_x[base + j], ce_t[base + j], row_max);
    }
    ce_store(row, base, 0u, 1u, row_max, sums.x + (sums.y - 1.0), sums);
}
