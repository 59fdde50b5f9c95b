//! The faces models of the zoo, written with the Keras-like API: a FaceNet-style embedding CNN
//! (convolution blocks, a dense projection, `UnitNormalization`), and the same trunk with a
//! softmax classification head for the classification-loss comparison.

use crate::error::Result;
use fovea_graph::Model;
use fovea_graph::layers::{
    Activation, BatchNormalization, Conv2D, Dense, Flatten, Input, MaxPooling2D, UnitNormalization,
};
use fovea_graph::model::Functional;

/// The input layer's name of every faces model.
pub const IMAGE_INPUT: &str = "image";
/// The L2-normalised embedding output's name.
pub const EMBEDDING_OUTPUT: &str = "embedding";
/// The classification head's output (logits over the training subjects).
pub const LOGITS_OUTPUT: &str = "logits";

/// The shape of an embedding network.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingConfig {
    /// `(height, width, channels)` of one face; ORL's 112x92 grey faces halved by default.
    pub input: [usize; 3],
    /// Filters of each convolution block (3x3 conv, batch norm, relu, 2x2 max pool).
    pub widths: Vec<usize>,
    /// Embedding dimension (128, as FaceNet).
    pub dim: usize,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        EmbeddingConfig {
            input: [56, 46, 1],
            widths: vec![16, 32, 64, 128],
            dim: 128,
        }
    }
}

/// Adds the convolutional trunk and the dense projection; returns the un-normalised features.
fn trunk(f: &mut Functional, cfg: &EmbeddingConfig) -> fovea_graph::model::SymbolicTensor {
    let mut h = f.input(Input::new(&cfg.input).name(IMAGE_INPUT));
    for (i, &w) in cfg.widths.iter().enumerate() {
        h = f.call(
            Conv2D::new(w, 3)
                .padding("same")
                .use_bias(false)
                .name(format!("block{}_conv", i + 1)),
            &[h],
        );
        h = f.call(BatchNormalization::new().name(format!("block{}_bn", i + 1)), &[h]);
        h = f.call(Activation::new("relu").name(format!("block{}_relu", i + 1)), &[h]);
        h = f.call(MaxPooling2D::new(2).name(format!("block{}_pool", i + 1)), &[h]);
    }
    h = f.call(Flatten::new().name("flatten"), &[h]);
    f.call(Dense::new(cfg.dim).name("projection"), &[h])
}

/// The embedding CNN: `cfg.widths.len()` blocks of 3x3 conv (same padding, no bias), batch
/// norm, relu and 2x2 max pooling, then flatten, a dense projection to `cfg.dim` and
/// `UnitNormalization`: input `image` `(N, H, W, C)`, output `embedding` `(N, dim)` of unit
/// L2 norm. Errors name the layer that cannot apply (an input too small for the pools, zero
/// filters).
pub fn embedding_net(cfg: &EmbeddingConfig, seed: u64) -> Result<Model> {
    let mut f = Functional::new("face_embedding");
    let h = trunk(&mut f, cfg);
    let e = f.call(UnitNormalization::new().name(EMBEDDING_OUTPUT), &[h]);
    Ok(f.build(&[e], seed)?)
}

/// [`embedding_net`] with a classification head beside the embedding: outputs `embedding` and
/// `logits` (a dense layer over the normalised embedding, one logit per training subject,
/// scaled by a learnt kernel as NormFace's scaled cosine). Its parameters are the embedding
/// net's (same names) plus `logits/kernel` and `logits/bias`.
pub fn embedding_classifier(cfg: &EmbeddingConfig, classes: usize, seed: u64) -> Result<Model> {
    let mut f = Functional::new("face_embedding_classifier");
    let h = trunk(&mut f, cfg);
    let e = f.call(UnitNormalization::new().name(EMBEDDING_OUTPUT), &[h]);
    let logits = f.call(Dense::new(classes).name(LOGITS_OUTPUT), &[e]);
    Ok(f.build(&[e, logits], seed)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_net_maps_orl_halves_to_unit_128_vectors() {
        let m = embedding_net(&EmbeddingConfig::default(), 1).unwrap();
        assert_eq!(m.input_names(), vec![IMAGE_INPUT.to_string()]);
        assert_eq!(m.output_names(), vec![EMBEDDING_OUTPUT.to_string()]);
        assert_eq!(m.output_shapes(), vec![vec![128]]);
        let c = embedding_classifier(&EmbeddingConfig::default(), 30, 1).unwrap();
        assert_eq!(c.output_shapes(), vec![vec![128], vec![30]]);
        // The classifier holds the embedding net's parameters under the same names.
        for p in m.params.iter() {
            assert_eq!(
                c.params.get(&p.name).map(|q| q.value.shape.clone()),
                Some(p.value.shape.clone())
            );
        }
    }

    #[test]
    fn a_too_small_input_is_an_error_naming_the_layer() {
        let cfg = EmbeddingConfig {
            input: [8, 8, 1],
            ..EmbeddingConfig::default()
        };
        let e = embedding_net(&cfg, 1).unwrap_err().to_string();
        assert!(e.contains("block4_pool") || e.contains("block3_pool"), "{e}");
    }
}
