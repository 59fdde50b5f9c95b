//! The task models' training steps as `fovea bench step` times them: each task's default
//! network and loss, at its default training size, without data (the benchmark feeds random
//! inputs and targets of the right shapes).

use crate::tasks::detection::train::TrainSettings;
use crate::tasks::faces::loss::mean_distance_metric;
use crate::tasks::faces::train::TrainConfig;
use crate::tasks::segmentation::loss::{LossWeights, loss_terms};
use crate::tasks::segmentation::model::{Arch, NetSpec};
use crate::tasks::style::loss::{ContentTarget, GramTarget, TvSource, content_term, style_term, tv_term};
use crate::zoo::detection::{SsdLiteConfig, ssd_lite};
use crate::zoo::faces::embedding_net;
use crate::zoo::style::{
    STYLISED, TransformConfig, random_feature_layers, random_loss_network, transform_training_network,
};
use crate::{DataError, Result};
use fovea_graph::train::{CompileConfig, Optimizer};
use fovea_graph::{Model, Tensor};

/// The task models `fovea bench step` knows, with what each is.
pub const TASK_MODELS: [(&str, &str); 6] = [
    ("ssd-lite", "the detector at 256x256, one class (fovea detect train)"),
    ("unet", "the U-Net on 128x128 membrane patches (fovea segment train)"),
    (
        "unet-w8",
        "the same at base width 8, the width BENCHMARKS.md trains for the targets",
    ),
    (
        "deeplab",
        "the DeepLab-style net on 128x128 patches (fovea segment --model deeplab)",
    ),
    (
        "faces",
        "the 56x46 face embedding with batch-hard triplets (fovea faces train)",
    ),
    (
        "style",
        "the transform net and the random loss net at 256x256 (fovea style train)",
    ),
];

/// The model and compile configuration of task model `name` (one of [`TASK_MODELS`]), or
/// `None` for another name.
pub fn task_model(name: &str) -> Result<Option<(Model, CompileConfig)>> {
    Ok(Some(match name {
        "ssd-lite" => {
            let cfg = SsdLiteConfig::new(1, 256);
            let settings = TrainSettings::default();
            let cc = CompileConfig::with_terms(settings.loss.terms(), settings.optimizer(1000), vec![]);
            (ssd_lite(&cfg, 0)?, cc)
        }
        "unet" | "unet-w8" | "deeplab" => {
            let arch = if name == "deeplab" { Arch::DeepLab } else { Arch::UNet };
            let mut spec = NetSpec::new(arch);
            if name == "unet-w8" {
                spec.base_width = 8;
            }
            let cc = CompileConfig::with_terms(loss_terms(LossWeights::default()), Optimizer::adam(1e-3), vec![]);
            (spec.build(0)?, cc)
        }
        "faces" => {
            let cfg = TrainConfig::default();
            let cc = CompileConfig::with_terms(
                vec![cfg.loss.term()],
                Optimizer::adam(cfg.learning_rate),
                vec![mean_distance_metric()],
            );
            (embedding_net(&cfg.embedding, 0)?, cc)
        }
        "style" => {
            let side = 256;
            let layers = random_feature_layers();
            // The Gram targets' shapes come from the loss network's channels; their values do
            // not change the step's work.
            let features = random_loss_network(side, side, &layers, 1)?;
            let shapes = features.output_shapes();
            let names = features.output_names();
            let grams = layers
                .style
                .iter()
                .map(|l| {
                    let c = names
                        .iter()
                        .position(|n| n == l)
                        .and_then(|i| shapes[i].last().copied())
                        .ok_or_else(|| {
                            DataError::value(format!("layer '{l}'"), "is not an output of the loss network")
                        })?;
                    Ok(GramTarget {
                        layer: l.clone(),
                        gram: Tensor::new(vec![c, c], vec![0.01; c * c], "gram")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let terms = vec![
                content_term(
                    0.5,
                    layers.content.clone(),
                    ContentTarget::Output(format!("ref_{}", layers.content)),
                ),
                style_term(1.0, grams),
                tv_term(2.0, TvSource::Output(STYLISED.into())),
            ];
            let cc = CompileConfig::with_terms(terms, Optimizer::adam(2e-3), vec![]);
            let model = transform_training_network(side, side, &TransformConfig::default(), &layers, 1, 1)?;
            (model, cc)
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_task_model_builds_and_the_w8_unet_is_narrower() {
        for (name, _) in TASK_MODELS {
            assert!(task_model(name).unwrap().is_some(), "{name}");
        }
        assert!(task_model("vgg").unwrap().is_none());
        let count = |name| task_model(name).unwrap().unwrap().0.params.count(None);
        let (w16, w8) = (count("unet"), count("unet-w8"));
        // Halving every width quarters the 3x3 kernels' weights (the 1-channel stem and the
        // 1-logit head scale linearly), so a little over a quarter.
        assert!(w8 * 4 >= w16 && w8 * 3 < w16, "{w8} against {w16}");
    }
}
