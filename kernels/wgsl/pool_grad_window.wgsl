// pool_grad_window.wgsl: the gradient of 2-D max or average pooling (Pool2dBackprop) for
// non-overlapping windows (stride >= window in both dimensions), scattered per window.
//
// With SH >= KH and SW >= KW every input element lies in at most one window, so the input splits
// into cells of SH x SW elements: cell (cy, cx) holds rows cy*SH - PT .. cy*SH - PT + SH (clipped
// to [0, H)) and likewise columns; its top-left KH x KW corner is window (oy, ox) = (cy, cx) when
// cy < OH and cx < OW, the rest of it (gaps between windows when the stride exceeds the window,
// the bottom rows and right columns no window reaches) belongs to no window. The cells cover the
// input exactly once: NCY = ceil((H + PT) / SH) rows of cells (NCX columns alike).
//   max: the window's first in-range maximum in row-major window order (strictly greater wins,
//        so ties go to the first, as in graph/src/interp/pool.rs) gets dy[n, oy, ox, c], the
//        other positions of the cell 0;
//   avg: every in-range window position gets dy / (number of in-range positions), the rest 0.
// Each invocation reads its window of x once (max only) and one dy, and writes every element of
// its cell exactly once: no rescans of overlapping windows (pool_grad.wgsl, one invocation per
// input element, reads KH*KW windows of KH*KW elements each), no zero-fill pass.
// Store hook: pg_dx[i] = epilogue(i, acc) for each written element (EPILOGUE, shared with
// pool_grad.wgsl: the identity or a fused elementwise epilogue reading epi_in1.. at i or i % C).
// Bindings: max: 0 pg_x (N, H, W, C) the forward input, 1 pg_dy (N, OH, OW, C) (read), then the
// epilogue's extra inputs (read), last pg_dx (N, H, W, C) (read_write); avg: 0 pg_dy, the
// extras, last pg_dx (X_DECL, DY_BINDING and DX_BINDING are substituted).
// Vectorisation: L channels per invocation (L = 4 when C % 4 == 0, else 1): pg_x and pg_dy are
// arrays of T (vec4<f32> or f32), CL = C / L of them per pixel, the argmax is tracked per lane as
// a window position (K, a vec4<u32> or u32), and the L results are stored one by one through the
// scalar epilogue (STORE_LANES). On lavapipe one vec4 load per lane costs about what one f32 load
// does, so 4 channels per invocation moves ~4x the bytes per instruction.
// Threading: one invocation per (n, cy, cx, channel group), linear index
// ((n*NCY + cy)*NCX + cx)*CL + cg folded into a 2-D grid of WG-wide workgroups (INDEX), guarded
// by i < TOTAL; neighbouring invocations take neighbouring channel groups (contiguous loads).

const TOTAL: u32 = {{TOTAL}}u;
const H: i32 = {{H}};
const W: i32 = {{W}};
const C: u32 = {{C}}u;
const CL: u32 = {{CL}}u;
const L: u32 = {{L}}u;
const OH: i32 = {{OH}};
const OW: i32 = {{OW}};
const KH: i32 = {{KH}};
const KW: i32 = {{KW}};
const SH: i32 = {{SH}};
const SW: i32 = {{SW}};
const PT: i32 = {{PT}};
const PL: i32 = {{PL}};
const NCY: u32 = {{NCY}}u;
const NCX: u32 = {{NCX}}u;

alias T = {{T}};
alias K = {{K}};
alias B = {{B}};

{{X_DECL}}
@group(0) @binding({{DY_BINDING}}) var<storage, read> pg_dy: array<T>;
@group(0) @binding({{DX_BINDING}}) var<storage, read_write> pg_dx: array<f32>;

{{EPILOGUE}}

// The index (in T units) of x[n, y, x, cg] and of dx's first lane there.
fn at(n: u32, y: i32, x: i32, cg: u32) -> u32 {
    return ((n * u32(H) + u32(y)) * u32(W) + u32(x)) * CL + cg;
}

fn store(i: u32, acc: f32) {
    pg_dx[i] = epilogue(i, acc);
}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let cg = i % CL;
    let cx = i32((i / CL) % NCX);
    let cy = i32((i / (CL * NCX)) % NCY);
    let n = i / (CL * NCX * NCY);
    let y0 = cy * SH - PT;
    let x0 = cx * SW - PL;
    // The cell and its window, clipped to the input; the window is empty past the last output.
    let y_lo = max(y0, 0);
    let x_lo = max(x0, 0);
    let y_hi = min(y0 + SH, H);
    let x_hi = min(x0 + SW, W);
    let wy_hi = select(y_lo, min(y0 + KH, H), cy < OH);
    let wx_hi = select(x_lo, min(x0 + KW, W), cx < OW);
    var g = T(0.0);
    var bk = K(0u);
    if (wy_hi > y_lo && wx_hi > x_lo) {
        g = pg_dy[((n * u32(OH) + u32(cy)) * u32(OW) + u32(cx)) * CL + cg];
        {{SELECT}}
    }
    for (var y = y_lo; y < y_hi; y++) {
        for (var x = x_lo; x < x_hi; x++) {
            let in_win = y < wy_hi && x < wx_hi;
            let k = K(u32((y - y0) * KW + (x - x0)));
            let v = {{VALUE}};
            let e = at(n, y, x, cg) * L;
            {{STORE_LANES}}
        }
    }
}
