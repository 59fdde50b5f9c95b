// resize_grad.wgsl: the gradient of a spatial resize (ResizeBackprop), gathered per input
// pixel so that no two invocations write the same place.
//
//   dx[n, iy, ix, c] = sum over outputs (oy, ox) of wy(oy) * wx(ox) * dy[n, oy, ox, c]
// where wy(oy) is the weight the forward gave input row iy when computing output row oy:
//   nearest:   1 if the row the forward read (integer or f32 source position) is iy, else 0
//   bilinear:  (1 - f) if lo == iy, plus f if hi == iy, with src, lo, hi and f computed exactly
//              as resize.wgsl does
// (likewise wx). SRC_Y and SRC_X are the forward's f32 source positions per axis (unused by the
// integer nearest mode). Only a conservative window of outputs around the pixel is visited
// (FIRST_Y, END_Y and FIRST_X, END_X, substituted per mode and axis); WEIGHT is the substituted
// weight function.
// Bindings: 0 rg_dy (N, OH, OW, C) (read), 1 rg_dx (N, IH, IW, C) (read_write).
// Threading: one invocation per input element, linear index ((n*IH + iy)*IW + ix)*C + c folded
// into a 2-D grid of WG-wide workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;
const IH: u32 = {{IH}}u;
const IW: u32 = {{IW}}u;
const OH: u32 = {{OH}}u;
const OW: u32 = {{OW}}u;
const C: u32 = {{C}}u;

@group(0) @binding(0) var<storage, read> rg_dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> rg_dx: array<f32>;

// The forward's f32 source position of output `dst` along `axis` (0 rows, 1 columns).
fn src(axis: u32, dst: u32) -> f32 {
    if (axis == 0u) {
        {{SRC_Y}}
    }
    {{SRC_X}}
}

// The weight input position `i` (of `len_in`) gets in output position `o` (of `len_out`)
// along `axis`.
fn weight(axis: u32, o: u32, i: u32, len_in: u32, len_out: u32) -> f32 {
    {{WEIGHT}}
}

// The first and one-past-last output rows (columns) that can read input row (column) `i`.
fn first_y(i: u32, len_in: u32, len_out: u32) -> u32 {
    {{FIRST_Y}}
}

fn end_y(i: u32, len_in: u32, len_out: u32) -> u32 {
    {{END_Y}}
}

fn first_x(i: u32, len_in: u32, len_out: u32) -> u32 {
    {{FIRST_X}}
}

fn end_x(i: u32, len_in: u32, len_out: u32) -> u32 {
    {{END_X}}
}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let c = i % C;
    let ix = (i / C) % IW;
    let iy = (i / (C * IW)) % IH;
    let n = i / (C * IW * IH);
    let oy_end = end_y(iy, IH, OH);
    let ox_first = first_x(ix, IW, OW);
    let ox_end = end_x(ix, IW, OW);
    var acc = 0.0;
    for (var oy = first_y(iy, IH, OH); oy < oy_end; oy++) {
        let wy = weight(0u, oy, iy, IH, OH);
        if (wy == 0.0) {
            continue;
        }
        for (var ox = ox_first; ox < ox_end; ox++) {
            let wx = weight(1u, ox, ix, IW, OW);
            acc = acc + wy * wx * rg_dy[((n * OH + oy) * OW + ox) * C + c];
        }
    }
    rg_dx[i] = acc;
}
