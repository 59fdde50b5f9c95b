//! Which network the recipe trains, at which size, and how a weights file tells it back.

use std::path::Path;

use fovea_engine::checkpoint;
use fovea_graph::Model;

use crate::zoo::segmentation::{Decoder, DeepLabConfig, UNetConfig, deeplab, unet};
use crate::{DataError, Result};

/// The architectures of `fovea segment train --model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// [`crate::zoo::segmentation::unet`].
    UNet,
    /// [`crate::zoo::segmentation::deeplab`].
    DeepLab,
}

impl Arch {
    /// Parses `unet` or `deeplab`.
    pub fn parse(name: &str) -> Result<Arch> {
        match name {
            "unet" => Ok(Arch::UNet),
            "deeplab" => Ok(Arch::DeepLab),
            other => Err(DataError::value(
                "--model",
                format!("\"{other}\" is not a segmentation model; expected unet or deeplab"),
            )),
        }
    }

    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            Arch::UNet => "unet",
            Arch::DeepLab => "deeplab",
        }
    }
}

/// The size of the network the recipe builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetSpec {
    /// The architecture.
    pub arch: Arch,
    /// Side of the square grey input tile (training crops and inference tiles).
    pub tile: usize,
    /// Filters of the first level / stem.
    pub base_width: usize,
    /// U-Net levels (ignored by DeepLab).
    pub depth: usize,
    /// BatchNormalization after the convolutions.
    pub batch_norm: bool,
}

impl NetSpec {
    /// The defaults of `fovea segment train`: width 16, depth 4, batch norm, 128x128 tiles.
    pub fn new(arch: Arch) -> NetSpec {
        NetSpec {
            arch,
            tile: 128,
            base_width: 16,
            depth: 4,
            batch_norm: true,
        }
    }

    /// Builds the network with one logit per pixel.
    pub fn build(&self, seed: u64) -> Result<Model> {
        match self.arch {
            Arch::UNet => unet(
                &UNetConfig {
                    input: [self.tile, self.tile, 1],
                    base_width: self.base_width,
                    depth: self.depth,
                    batch_norm: self.batch_norm,
                    decoder: Decoder::Transposed,
                    classes: 1,
                },
                seed,
            ),
            Arch::DeepLab => deeplab(
                &DeepLabConfig {
                    input: [self.tile, self.tile, 1],
                    base_width: self.base_width,
                    aspp_filters: 4 * self.base_width,
                    batch_norm: self.batch_norm,
                    ..DeepLabConfig::default()
                },
                seed,
            ),
        }
    }

    /// Reads which network a weights file written by `fovea segment train` holds (a U-Net has
    /// transposed-convolution kernels, one per level; the width is the first kernel's filters)
    /// and builds it with those weights, at tile side `tile`.
    pub fn load(path: &Path, tile: usize) -> Result<(NetSpec, Model)> {
        let tensors = checkpoint::read_safetensors(path)?;
        let shape = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t.shape.clone());
        let first = shape("conv2d/kernel")
            .ok_or_else(|| DataError::format(path, "no conv2d/kernel: not weights of a fovea segmentation model"))?;
        let base_width = *first.last().unwrap_or(&0);
        let transposed = tensors
            .iter()
            .filter(|(n, _)| n.starts_with("conv2d_transpose") && n.ends_with("/kernel"))
            .count();
        let spec = NetSpec {
            arch: if transposed > 0 { Arch::UNet } else { Arch::DeepLab },
            tile,
            base_width,
            depth: transposed.max(1),
            batch_norm: shape("batch_normalization/gamma").is_some(),
        };
        let mut model = spec.build(0)?;
        checkpoint::load_params(path, &mut model.params)?;
        Ok((spec, model))
    }
}
