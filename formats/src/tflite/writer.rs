//! A minimal TFLite writer for the unit tests: builds small models (and broken ones) with
//! `flatbuffers::FlatBufferBuilder`, using the schema's field slots.

use flatbuffers::{FlatBufferBuilder, TableFinishedWIPOffset, WIPOffset};

/// A tensor to write.
pub struct T {
    pub name: &'static str,
    pub shape: Vec<i32>,
    pub dtype: i8,
    pub data: Option<Vec<u8>>,
    pub quantized: bool,
}

/// An operator to write: operator-code index, inputs, outputs, options (union key and an ADD-like
/// table with only `fused_activation_function`).
pub struct O {
    pub opcode: u32,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub options_key: u8,
}

/// An operator code: builtin number, or custom name.
pub enum C {
    Builtin(i32),
    Custom(&'static str),
}

type Off = WIPOffset<TableFinishedWIPOffset>;

/// The bytes of a model with one subgraph.
pub fn model(codes: &[C], tensors: &[T], ops: &[O], inputs: &[i32], outputs: &[i32]) -> Vec<u8> {
    let mut b = FlatBufferBuilder::new();
    let codes: Vec<Off> = codes
        .iter()
        .map(|c| {
            let custom = match c {
                C::Custom(n) => Some(b.create_string(n)),
                C::Builtin(_) => None,
            };
            let s = b.start_table();
            match c {
                C::Builtin(code) => {
                    b.push_slot_always::<i8>(4, (*code).min(127) as i8);
                    b.push_slot_always::<i32>(10, *code);
                }
                C::Custom(_) => {
                    b.push_slot_always::<i8>(4, 32);
                    b.push_slot_always::<i32>(10, 32);
                }
            }
            if let Some(n) = custom {
                b.push_slot_always(6, n);
            }
            b.end_table(s)
        })
        .collect();
    // Buffer 0 is the empty sentinel, as converters write it.
    let mut buffers: Vec<Off> = vec![{
        let s = b.start_table();
        b.end_table(s)
    }];
    let mut tensor_offs = Vec::new();
    for t in tensors {
        let buffer = match &t.data {
            Some(d) => {
                let v = b.create_vector(d);
                let s = b.start_table();
                b.push_slot_always(4, v);
                buffers.push(b.end_table(s));
                buffers.len() as u32 - 1
            }
            None => 0,
        };
        let name = b.create_string(t.name);
        let shape = b.create_vector(&t.shape);
        let quant = t.quantized.then(|| {
            let scale = b.create_vector(&[0.5f32]);
            let s = b.start_table();
            b.push_slot_always(8, scale);
            b.end_table(s)
        });
        let s = b.start_table();
        b.push_slot_always(4, shape);
        b.push_slot_always::<i8>(6, t.dtype);
        b.push_slot_always::<u32>(8, buffer);
        b.push_slot_always(10, name);
        if let Some(q) = quant {
            b.push_slot_always(12, q);
        }
        tensor_offs.push(b.end_table(s));
    }
    let mut op_offs = Vec::new();
    for o in ops {
        let ins = b.create_vector(&o.inputs);
        let outs = b.create_vector(&o.outputs);
        let opts = (o.options_key != 0).then(|| {
            let s = b.start_table();
            b.push_slot_always::<i8>(4, 0);
            b.end_table(s)
        });
        let s = b.start_table();
        b.push_slot_always::<u32>(4, o.opcode);
        b.push_slot_always(6, ins);
        b.push_slot_always(8, outs);
        if let Some(opts) = opts {
            b.push_slot_always::<u8>(10, o.options_key);
            b.push_slot_always(12, opts);
        }
        op_offs.push(b.end_table(s));
    }
    let tensors_v = b.create_vector(&tensor_offs);
    let ops_v = b.create_vector(&op_offs);
    let ins = b.create_vector(inputs);
    let outs = b.create_vector(outputs);
    let s = b.start_table();
    b.push_slot_always(4, tensors_v);
    b.push_slot_always(6, ins);
    b.push_slot_always(8, outs);
    b.push_slot_always(10, ops_v);
    let sub = b.end_table(s);
    let codes_v = b.create_vector(&codes);
    let subs = b.create_vector(&[sub]);
    let bufs = b.create_vector(&buffers);
    let s = b.start_table();
    b.push_slot_always::<u32>(4, 3);
    b.push_slot_always(6, codes_v);
    b.push_slot_always(8, subs);
    b.push_slot_always(12, bufs);
    let root = b.end_table(s);
    b.finish(root, Some("TFL3"));
    b.finished_data().to_vec()
}

/// Little-endian bytes of `v`.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `y = x + c` with `x` `(1, 2, 2, 3)` and a constant `c` `(3,)` of `c_bytes`, as operator code
/// `code` (0 = ADD).
pub fn add_model(code: C, c_bytes: Vec<u8>, quantized_x: bool) -> Vec<u8> {
    model(
        &[code],
        &[
            T {
                name: "x",
                shape: vec![1, 2, 2, 3],
                dtype: 0,
                data: None,
                quantized: quantized_x,
            },
            T {
                name: "c",
                shape: vec![3],
                dtype: 0,
                data: Some(c_bytes),
                quantized: false,
            },
            T {
                name: "y",
                shape: vec![1, 2, 2, 3],
                dtype: 0,
                data: None,
                quantized: false,
            },
        ],
        &[O {
            opcode: 0,
            inputs: vec![0, 1],
            outputs: vec![2],
            options_key: 11,
        }],
        &[0],
        &[2],
    )
}
