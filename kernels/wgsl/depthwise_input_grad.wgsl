// depthwise_input_grad.wgsl: the input gradient of a depthwise convolution
// (Conv2dBackpropInput with groups == C; the kernel (KH, KW, 1, CO) or, transposed,
// (KH, KW, CO, 1): the same memory either way), CO = C * MULT.
//
//   dx[n, iy, ix, c] = sum_{m, ky, kx} dy[n, oy, ox, c*MULT + m] * w[ky, kx, 0, c*MULT + m]
//     over the taps with oy*SH - PT + ky*DH = iy and ox*SW - PL + kx*DW = ix, (oy, ox) in range.
// Bindings: 0 dwi_dy (N, OH, OW, CO), 1 dwi_w, 2 dwi_dx (N, H, W, C) (read_write), as array<T>
// (vec4<f32> when MULT == 1 and C % 4 == 0, else f32).
//
// Threading: one invocation per (n, iy, block of IXB input columns, channel slot), the channel
// slot fastest. IXB is a multiple of SW, so which taps reach which of the block's columns, and
// from which dy column (oxq + offset, oxq = ix0 / SW), is known when the kernel is generated:
// ROW (depthwise.rs) loads each dy column once per kernel row and adds only the taps that
// land (for SW > 1 most do not). Kernel rows are checked at run time (oy must be an in-range
// multiple of SH away). The linear index is folded into a 2-D grid (INDEX), i < TOTAL.

alias T = {{T}};

const TOTAL: u32 = {{TOTAL}}u;
const H: u32 = {{H}}u;
const W: u32 = {{W}}u;
const OH: i32 = {{OH}};
const OW: i32 = {{OW}};
const CS: u32 = {{CS}}u; // dx's pixel stride in T elements: the channel slots
const YS: u32 = {{YS}}u; // dy's (and w's) pixel stride in T elements
const MULT: u32 = {{MULT}}u;
const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const SH: i32 = {{SH}};
const SW: u32 = {{SW}}u;
const DH: i32 = {{DH}};
const PT: i32 = {{PT}};
const IXB: u32 = {{IXB}}u; // input columns per invocation (a multiple of SW)
const IXBLK: u32 = {{IXBLK}}u; // ceil(W / IXB)

@group(0) @binding(0) var<storage, read> dwi_dy: array<T>;
@group(0) @binding(1) var<storage, read> dwi_w: array<T>;
@group(0) @binding(2) var<storage, read_write> dwi_dx: array<T>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let cs = i % CS;
    var r = i / CS;
    let ixb = r % IXBLK;
    r = r / IXBLK;
    let iy = r % H;
    let n = r / H;
    let ix0 = ixb * IXB;
    let oxq = i32(ix0 / SW);
{{ACC}}
    for (var m = 0u; m < MULT; m++) {
        let co = cs * MULT + m;
        for (var ky = 0u; ky < KH; ky++) {
            let num = i32(iy) + PT - i32(ky) * DH;
            if (num < 0 || num % SH != 0 || num / SH >= OH) {
                continue;
            }
            let row = (n * u32(OH) + u32(num / SH)) * u32(OW);
            let wrow = ky * KW * YS + co;
{{ROW}}
        }
    }
    let out = ((n * H + iy) * W + ix0) * CS + cs;
{{STORE}}
}
