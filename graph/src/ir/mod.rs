//! The graph IR: static shapes, typed nodes, each remembering the layer it came from.

mod infer;
mod op;
mod structural;

pub use infer::broadcast_shapes;
pub(crate) use infer::infer;
pub use op::*;
pub use structural::{GatherDims, input_dtype, sort_order};

use crate::error::{GraphError, Result};
use smallvec::SmallVec;
use std::fmt;

/// A static shape, outermost axis first (NHWC for images).
pub type Shape = Vec<usize>;

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The most elements one tensor may hold: 2^30 (4 GiB of `f32`). Every shape a graph node,
/// parameter, input or constant gets is checked against it (with overflow-safe arithmetic)
/// before anything is allocated, so a model file asking for `filters: 10^15` is an error naming
/// its layer, not an aborted process. The device's own buffer limits are checked again when a
/// program is compiled.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 30;

/// The element count of `shape`, or `None` when it overflows or exceeds [`MAX_TENSOR_ELEMENTS`].
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
}

/// Formats a shape as `(32, 28, 28, 1)`.
pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Shape and element type of a tensor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// The dimensions.
    pub shape: Shape,
    /// The element type.
    pub dtype: DType,
}

impl TensorType {
    /// An `f32` tensor type.
    pub fn f32(shape: impl Into<Shape>) -> Self {
        TensorType {
            shape: shape.into(),
            dtype: DType::F32,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.numel() * self.dtype.size_bytes()
    }

    /// Rank (number of axes).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype.name(), fmt_shape(&self.shape))
    }
}

/// Index of a node in its graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index into [`Graph::nodes`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// One operation of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// The nodes it reads, in the order the op documents.
    pub inputs: SmallVec<[NodeId; 4]>,
    /// Its output's type, inferred when the node was added.
    pub ty: TensorType,
    /// The name of the layer this node came from (errors and dumps speak in layer names).
    pub layer: String,
}

/// A dataflow graph in topological order: a node only reads nodes added before it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    /// All nodes, in topological order.
    pub nodes: Vec<Node>,
    /// The `Input` nodes, in feeding order.
    pub inputs: Vec<NodeId>,
    /// The nodes whose values the graph returns.
    pub outputs: Vec<NodeId>,
    /// State updates applied after each run: `(param, new_value)` writes the value of
    /// `new_value` into the `Param` node `param` (weights, optimizer slots, moving statistics).
    pub updates: Vec<(NodeId, NodeId)>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Graph::default()
    }

    /// The node behind `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// The output type of `id`.
    pub fn ty(&self, id: NodeId) -> &TensorType {
        &self.nodes[id.index()].ty
    }

    /// The shape of `id`.
    pub fn shape(&self, id: NodeId) -> &[usize] {
        &self.nodes[id.index()].ty.shape
    }

    /// Adds a model input.
    pub fn input(&mut self, name: &str, ty: TensorType) -> Result<NodeId> {
        check_dims(name, &ty.shape)?;
        let id = self.push_typed(Op::Input { name: name.to_string() }, &[], ty, name);
        self.inputs.push(id);
        Ok(id)
    }

    /// Adds a parameter named `name` (`<layer>/<variable>`), made by `layer`.
    pub fn param(&mut self, name: &str, shape: &[usize], trainable: bool, layer: &str) -> Result<NodeId> {
        check_dims(layer, shape)?;
        let op = Op::Param {
            name: name.to_string(),
            trainable,
        };
        Ok(self.push_typed(op, &[], TensorType::f32(shape.to_vec()), layer))
    }

    /// Adds a node computing `op` of `inputs`, inferring its output type; the error names `layer`.
    pub fn push(&mut self, op: Op, inputs: &[NodeId], layer: &str) -> Result<NodeId> {
        for &i in inputs {
            if i.index() >= self.nodes.len() {
                return Err(GraphError::shape(
                    layer,
                    format!("input {i} is not a node of this graph"),
                ));
            }
        }
        let in_types: Vec<&TensorType> = inputs.iter().map(|&i| self.ty(i)).collect();
        let ty = infer::infer(&op, &in_types, layer)?;
        check_size(layer, &ty.shape)?;
        Ok(self.push_typed(op, inputs, ty, layer))
    }

    /// Adds a tensor of `shape` filled with `value`.
    pub fn fill(&mut self, shape: &[usize], value: f32, layer: &str) -> Result<NodeId> {
        check_dims(layer, shape)?;
        Ok(self.push_typed(Op::Fill { value }, &[], TensorType::f32(shape.to_vec()), layer))
    }

    /// Adds a constant holding `value` (its shape and data), named after `layer`. Errors if an
    /// axis is 0 or the data does not match the shape.
    pub fn constant(&mut self, value: impl Into<std::sync::Arc<crate::tensor::Tensor>>, layer: &str) -> Result<NodeId> {
        let value = value.into();
        check_dims(layer, &value.shape)?;
        if value.data.len() != numel(&value.shape) {
            return Err(GraphError::shape(
                layer,
                format!(
                    "constant of shape {} needs {} values, got {}",
                    fmt_shape(&value.shape),
                    numel(&value.shape),
                    value.data.len()
                ),
            ));
        }
        let ty = TensorType::f32(value.shape.clone());
        Ok(self.push_typed(
            Op::Constant {
                value: ConstantData(value),
            },
            &[],
            ty,
            layer,
        ))
    }

    /// Adds a reshape of `x` to `shape` (same element count).
    pub fn reshape(&mut self, x: NodeId, shape: &[usize], layer: &str) -> Result<NodeId> {
        if x.index() >= self.nodes.len() {
            return Err(GraphError::shape(
                layer,
                format!("input {x} is not a node of this graph"),
            ));
        }
        let from = self.ty(x).clone();
        if numel(shape) != from.numel() {
            return Err(GraphError::shape(
                layer,
                format!(
                    "cannot reshape {} ({} elements) to {} ({} elements)",
                    fmt_shape(&from.shape),
                    from.numel(),
                    fmt_shape(shape),
                    numel(shape)
                ),
            ));
        }
        check_dims(layer, shape)?;
        Ok(self.push_typed(
            Op::Reshape,
            &[x],
            TensorType {
                shape: shape.to_vec(),
                dtype: from.dtype,
            },
            layer,
        ))
    }

    /// Appends a node as it is (its type already inferred); passes use it to rebuild graphs.
    pub(crate) fn push_node(&mut self, node: Node) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(node);
        id
    }

    /// The node whose buffer holds `id`'s data: follows view ops (reshape, inference dropout)
    /// back to their source.
    pub fn storage_root(&self, id: NodeId) -> NodeId {
        let mut id = id;
        while self.node(id).op.is_view() {
            id = self.node(id).inputs[0];
        }
        id
    }

    /// How many nodes read each node (graph outputs and updates count as readers).
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0; self.nodes.len()];
        for n in &self.nodes {
            for i in &n.inputs {
                uses[i.index()] += 1;
            }
        }
        for o in &self.outputs {
            uses[o.index()] += 1;
        }
        for (p, v) in &self.updates {
            uses[p.index()] += 1;
            uses[v.index()] += 1;
        }
        uses
    }

    fn push_typed(&mut self, op: Op, inputs: &[NodeId], ty: TensorType, layer: &str) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(Node {
            op,
            inputs: inputs.iter().copied().collect(),
            ty,
            layer: layer.to_string(),
        });
        id
    }

    /// The parameter nodes with their names, in graph order.
    pub fn params(&self) -> impl Iterator<Item = (NodeId, &str)> {
        self.nodes.iter().enumerate().filter_map(|(i, n)| match &n.op {
            Op::Param { name, .. } => Some((NodeId(i as u32), name.as_str())),
            _ => None,
        })
    }
}

/// Checks that `shape` has no zero-length axis and at most [`MAX_TENSOR_ELEMENTS`] elements.
pub fn check_dims(what: &str, shape: &[usize]) -> Result<()> {
    if shape.contains(&0) {
        return Err(GraphError::shape(
            what,
            format!("shape {} has a zero-length axis", fmt_shape(shape)),
        ));
    }
    check_size(what, shape)
}

/// Checks that `shape` holds at most [`MAX_TENSOR_ELEMENTS`] elements (overflow-safe).
pub fn check_size(what: &str, shape: &[usize]) -> Result<()> {
    if checked_numel(shape).is_none() {
        return Err(GraphError::shape(
            what,
            format!(
                "a tensor of shape {} would exceed the limit of {MAX_TENSOR_ELEMENTS} elements (4 GiB) per tensor; \
                 check the layer's sizes (filters, units, kernel_size) or the input size",
                fmt_shape(shape)
            ),
        ));
    }
    Ok(())
}
