//! Device faults are errors, not aborts or hangs: a tensor larger than the adapter can bind is
//! refused before anything is allocated, naming the tensor, its size and the limit.

mod common;

use fovea::engine::Program;
use fovea::graph::ir::{Graph, Op, TensorType, UnaryOp};

#[test]
fn a_tensor_over_the_binding_limit_is_an_error_naming_it_and_the_limit() {
    let device = common::device();
    let limit_of = |name: &str| {
        let l = device.info().limits.iter().find(|(k, _)| k == name);
        l.map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("the adapter info lists no {name}"))
    };
    let limit = limit_of("max_storage_buffer_binding_size").min(limit_of("max_buffer_size"));
    // One float more than the adapter can bind, as a (rows, 1024) activation.
    let rows = (limit / 4 / 1024 + 1) as usize;
    if rows * 1024 > fovea::graph::ir::MAX_TENSOR_ELEMENTS {
        eprintln!("skipped: this adapter binds {limit} bytes, more than one graph tensor may hold");
        return;
    }
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![rows, 1024])).unwrap();
    let y = g.push(Op::Unary(UnaryOp::Relu), &[x], "huge_relu").unwrap();
    g.outputs.push(y);
    let e = match Program::compile(&device, g) {
        Ok(_) => panic!("a tensor over the binding limit must not compile"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("max_storage_buffer_binding_size"), "{e}");
    assert!(e.contains(&format!("({rows}, 1024)")), "{e}");
    assert!(e.contains("smaller batch size"), "{e}");
}
