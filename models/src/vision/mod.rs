//! Images in and out, the geometry that moves labels with them, and pictures of results.
//!
//! Everything works on [`Image`] (`f32`, height-width-channel). Files come in through
//! [`image_io`] (guarded decoders) and [`archive`] (members of a `.tar.gz`); tensors through
//! [`convert`]; sizes change through [`resize`], [`crop`] and [`letterbox`]; [`augment`]
//! moves masks and [`BBox`]es with the image.

pub mod archive;
pub mod augment;
pub mod boxes;
pub mod convert;
pub mod crop;
pub mod draw;
pub mod image;
pub mod image_io;
pub mod letterbox;
pub mod resize;

pub use self::image::Image;
pub use boxes::BBox;
pub use convert::{Normalization, image_to_tensor, images_to_tensor, tensor_to_image, tensor_to_images};
pub use image_io::{BitDepth, DecodeLimits, decode_image, read_image, write_jpeg, write_png};
pub use resize::{Filter, resize};
