// reduce_split.wgsl: the first dispatch of a split sum or mean (see reduce.rs `reduce_splits`):
// few outputs, each over many elements (batch-norm statistics: C channels over N * H * W).
// Each output's COUNT reduced elements are cut into SPLITS runs of CHUNK; invocation
// i = s * TOTAL + o sums run s of output o into the scratch buffer, times SCALE (1 / COUNT for a
// mean, so the partials add up to it). split_k.wgsl then adds the SPLITS partials of every output
// in split order. Neighbouring invocations are neighbouring outputs: with the channels innermost
// they read neighbouring addresses.
//
// Bindings (generated, BINDINGS): the input(s) (read), then red_partials (the scratch buffer,
// [SPLITS][TOTAL] f32, read_write). BASE (of o), OFFSET (of r) and LOAD (element q's value v)
// are as in reduce.wgsl; the linear index is folded into a 2-D grid (INDEX).

const TOTAL: u32 = {{TOTAL}}u;
const COUNT: u32 = {{COUNT}}u;
const CHUNK: u32 = {{CHUNK}}u;
const PARTS: u32 = {{PARTS}}u;

{{BINDINGS}}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= PARTS) {
        return;
    }
    let o = i % TOTAL;
    let s = i / TOTAL;
    let base = {{BASE}};
    let r0 = s * CHUNK;
    let r1 = min(r0 + CHUNK, COUNT);
    var acc = 0.0;
    for (var r = r0; r < r1; r++) {
        let q = base + {{OFFSET}};
{{LOAD}}
        acc += v;
    }
    red_partials[i] = acc * {{SCALE}};
}
