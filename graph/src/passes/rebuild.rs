//! Rebuilding a graph node by node with some nodes replaced: the common core of the passes.

use crate::ir::{Graph, Node, NodeId, Op};

/// A graph under reconstruction: old node ids map to new ones.
pub(crate) struct Rebuild<'a> {
    /// The graph being rewritten.
    pub old: &'a Graph,
    /// The new graph.
    pub new: Graph,
    /// Where each old node went (`None`: not (yet) copied).
    pub map: Vec<Option<NodeId>>,
}

impl<'a> Rebuild<'a> {
    pub fn new(old: &'a Graph) -> Self {
        Rebuild {
            old,
            new: Graph::new(),
            map: vec![None; old.nodes.len()],
        }
    }

    /// The new id of old node `id` (which must have been copied or replaced already).
    pub fn get(&self, id: NodeId) -> NodeId {
        self.map[id.index()].expect("nodes are rebuilt in topological order")
    }

    /// Copies old node `id` with its inputs remapped.
    pub fn copy(&mut self, id: NodeId) -> NodeId {
        let n = self.old.node(id);
        let node = Node {
            inputs: n.inputs.iter().map(|&i| self.get(i)).collect(),
            ..n.clone()
        };
        let new = self.new.push_node(node);
        self.map[id.index()] = Some(new);
        new
    }

    /// Adds a new node (its type given) and returns its id.
    pub fn add(&mut self, node: Node) -> NodeId {
        self.new.push_node(node)
    }

    /// Replaces old node `id` by a new node running `op` over `inputs` (ids in the new graph),
    /// with `id`'s type and layer, and returns it.
    pub fn replace(&mut self, id: NodeId, op: Op, inputs: impl IntoIterator<Item = NodeId>) -> NodeId {
        let old = self.old.node(id);
        let new = self.new.push_node(Node {
            op,
            inputs: inputs.into_iter().collect(),
            ty: old.ty.clone(),
            layer: old.layer.clone(),
        });
        self.alias(id, new);
        new
    }

    /// Makes old node `id` stand for new node `to`.
    pub fn alias(&mut self, id: NodeId, to: NodeId) {
        self.map[id.index()] = Some(to);
    }

    /// Finishes the rebuild and reports it as pass `pass` with `changes`.
    pub fn report(self, pass: &'static str, changes: Vec<String>) -> (Graph, super::PassReport) {
        let nodes_before = self.old.nodes.len();
        let out = self.finish();
        let report = super::PassReport {
            pass,
            nodes_before,
            nodes_after: out.nodes.len(),
            changes,
        };
        (out, report)
    }

    /// Remaps inputs, outputs and updates and returns the new graph.
    pub fn finish(mut self) -> Graph {
        self.new.inputs = self.old.inputs.iter().map(|&i| self.get(i)).collect();
        self.new.outputs = self.old.outputs.iter().map(|&i| self.get(i)).collect();
        self.new.updates = self
            .old
            .updates
            .iter()
            .map(|&(p, v)| (self.get(p), self.get(v)))
            .collect();
        self.new
    }
}
