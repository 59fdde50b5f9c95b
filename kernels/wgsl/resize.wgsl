// resize.wgsl: spatial resize of an NHWC tensor from IH x IW to OH x OW.
//
//   nearest (Keras, TFLite without flags):  src = floor(dst * in / out)   (integer arithmetic)
//   every other mode (ResizeMode::source):  src = max((dst + a) * scale - b, 0) in f32, with the
//       mode's offsets a, b and scale (in / out, or (in - 1) / (out - 1) aligning corners)
//       substituted bit for bit (SRC_Y, SRC_X); the nearest modes floor it, the bilinear ones
//       read y0 = floor(src), y1 = min(y0 + 1, in - 1) with weights 1 - frac and frac (same for x).
// SAMPLE is the substituted body for the mode; it sets v from rs_x and (n, oy, ox, c).
// Bindings: 0 rs_x (N, IH, IW, C) (read), 1 rs_y (N, OH, OW, C) (read_write).
// Threading: one invocation per output element, linear index ((n*OH + oy)*OW + ox)*C + c folded
// into a 2-D grid of WG-wide workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;
const IH: u32 = {{IH}}u;
const IW: u32 = {{IW}}u;
const OH: u32 = {{OH}}u;
const OW: u32 = {{OW}}u;
const C: u32 = {{C}}u;

@group(0) @binding(0) var<storage, read> rs_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> rs_y: array<f32>;

fn pixel(n: u32, y: u32, x: u32, c: u32) -> f32 {
    return rs_x[((n * IH + y) * IW + x) * C + c];
}

fn src_y(dst: u32) -> f32 {
    {{SRC_Y}}
}

fn src_x(dst: u32) -> f32 {
    {{SRC_X}}
}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let c = i % C;
    let ox = (i / C) % OW;
    let oy = (i / (C * OW)) % OH;
    let n = i / (C * OW * OH);
    var v = 0.0;
    {{SAMPLE}}
    rs_y[i] = v;
}
