// multi_tensor.wgsl: the shell of the generated multi-tensor kernels (multi_tensor.rs): many
// small elementwise updates (the optimizer step of every parameter) in ONE dispatch. The work
// is a list of segments; segment s has len_s elements and a list of members, each an
// elementwise expression whose operands are tensors read at element j, one-element scalars
// (a learning rate) or the values of earlier members at j; a member's result may be stored.
//
// Bindings (generated, BINDINGS): mt_b0 .. mt_b{N-1}, whole buffers (arenas, parameter-state
// chunks) bound from their first byte, all var<storage, read_write> array<f32>: every tensor is
// addressed as mt_bK[offset + j] with its element offset baked into the source.
//
// Layout: the segments are concatenated (grouped by kind, see below) into one index space of
// TOTAL elements. Segments with the same structure (same member expressions, operand kinds and
// bindings, output bindings; only the offsets differ) form a "kind" and share one generated
// function mt_kindK(j, o0, o1, ...): j is the element within the segment, oN the offsets that
// differ between the kind's segments (slots at equal offsets share one; offsets equal for all
// the kind's segments, such as a shared learning rate, are literals in the body). Member
// expressions are functions mt_fN (shared by identical expressions) of the operands they read.
//
// No tables, no metadata buffer: the segment of g is found by a binary decision tree of
// `if (g < start)` over literal segment starts (depth ceil(log2(segments)); neighbouring
// invocations take the same branches), whose leaves set the kind k, j = g - start and the
// offsets oN as literals; a switch on k then calls the kind's function once. Module-scope
// const arrays indexed by g would validate (naga accepts them), but naga's SPIR-V backend
// spills the whole array into a function variable at every dynamic access, and var<private>
// tables are copied into every invocation: on lavapipe, with 40 and 300 segments, const
// tables measured 7x and 48x slower than the tree, var<private> ones 3.5x and 18x.
//
// Per invocation, each slot is loaded at most once (on first use) and its value kept in a
// local; a member's result replaces the local of the slot it is stored to, so later members
// read the new value; only the last store to a slot is written. All loads of a member precede
// its store (in-place updates: p = p - lr * m).
//
// Threading: one invocation per element of the concatenation, linear index folded into a 2-D
// grid of WG-wide workgroups (INDEX), guarded by g < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;

{{BINDINGS}}
{{FUNCTIONS}}
@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let g = {{INDEX}};
    if (g >= TOTAL) {
        return;
    }
{{DISPATCH}}
}
