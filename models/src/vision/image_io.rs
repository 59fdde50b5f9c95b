//! Reading and writing image files (JPEG, PNG, PGM/PPM, BMP in; PNG and JPEG out) with the
//! `image` crate, guarded against headers that claim more pixels than the file can hold.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::Image;
use crate::{DataError, Result};

/// What a decoder may accept before it allocates anything.
///
/// The header is read first; a file is refused when its width or height exceeds the maxima, when
/// `width * height` exceeds `max_pixels`, or when `width * height` exceeds `max_expansion` pixels
/// per byte of the file plus one megapixel. No supported format packs more: deflate expands at
/// most 1,032x, so a 1-bit PNG holds at most about 8,256 pixels per byte, and a JPEG needs a few
/// bits per 8x8 block. A file failing that test is truncated, corrupt or hostile. The decoder
/// itself may then allocate at most 8 bytes per claimed pixel plus 1 MiB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeLimits {
    /// Largest width in pixels (default 16,384).
    pub max_width: u32,
    /// Largest height in pixels (default 16,384).
    pub max_height: u32,
    /// Largest `width * height` (default 64 Mi pixels, e.g. 8192x8192).
    pub max_pixels: u64,
    /// Largest file in bytes (default 256 MiB).
    pub max_file_bytes: u64,
    /// Largest number of pixels per byte of the file (default 8,300).
    pub max_expansion: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 64 << 20,
            max_file_bytes: 256 << 20,
            max_expansion: 8_300,
        }
    }
}

/// Reads and decodes an image file with the default [`DecodeLimits`].
pub fn read_image(path: &Path) -> Result<Image> {
    read_image_with(path, &DecodeLimits::default())
}

/// Reads and decodes an image file; the format comes from the content, not the name.
pub fn read_image_with(path: &Path, limits: &DecodeLimits) -> Result<Image> {
    let size = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?.len();
    if size > limits.max_file_bytes {
        return Err(DataError::format(
            path,
            format!(
                "{size} bytes is more than the {} an image file may have",
                limits.max_file_bytes
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_image(&bytes, path, limits)
}

/// Decodes an image held in memory; `name` (a file or archive member) appears in errors.
pub fn decode_image(bytes: &[u8], name: &Path, limits: &DecodeLimits) -> Result<Image> {
    let bad = |message: String| DataError::format(name, message);
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(format!("cannot read the header: {e}")))
    };
    // The header alone: sizes are checked here, against our limits, with a clear message.
    let mut probe = reader()?;
    probe.limits(Limits::no_limits());
    if probe.format().is_none() {
        return Err(bad("not a JPEG, PNG, PNM or BMP file (unknown signature)".to_string()));
    }
    let (w, h) = probe.into_dimensions().map_err(|e| bad(format!("bad header: {e}")))?;
    let pixels = w as u64 * h as u64;
    if w == 0 || h == 0 {
        return Err(bad(format!("the header claims an empty {w}x{h} image")));
    }
    if w > limits.max_width || h > limits.max_height || pixels > limits.max_pixels {
        return Err(bad(format!(
            "the header claims {w}x{h} pixels; the limit is {}x{} and {} pixels",
            limits.max_width, limits.max_height, limits.max_pixels
        )));
    }
    let allowed = (bytes.len() as u64).saturating_mul(limits.max_expansion) + (1 << 20);
    if pixels > allowed {
        return Err(bad(format!(
            "the header claims {w}x{h} pixels, more than a {}-byte file can hold (truncated or corrupt)",
            bytes.len()
        )));
    }
    let mut reader = reader()?;
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(pixels * 8 + (1 << 20));
    reader.limits(decoder_limits);
    // A decoder that panics on a crafted file (zune-jpeg 0.5.15 did, found by fuzzing: see
    // fuzz/regressions/image/) is an error naming the file, not an abort of the command.
    let decoded = quietly(|| reader.decode())
        .map_err(|_| bad("the decoder failed on this file (corrupt or crafted data)".to_string()))?;
    let image = decoded.map_err(|e| bad(format!("cannot decode: {e}")))?;
    Ok(from_dynamic(image))
}

thread_local! {
    /// Set while this thread runs a decoder under [`quietly`].
    static DECODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, catching a panic, without the panic hook's "thread panicked at ..." line on stderr
/// (the caller turns the panic into an error naming the file). Panics elsewhere, on other threads
/// or outside `f`, still reach the hook that was installed before.
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !DECODING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    DECODING.with(|d| d.set(true));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    DECODING.with(|d| d.set(false));
    outcome
}

/// Converts a decoded `image` crate picture, keeping its channels (grey, grey + alpha, RGB, RGBA).
pub fn from_dynamic(image: DynamicImage) -> Image {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let (channels, data): (usize, Vec<f32>) = match image {
        DynamicImage::ImageLuma8(b) => (1, scale8(b.as_raw())),
        DynamicImage::ImageLumaA8(b) => (2, scale8(b.as_raw())),
        DynamicImage::ImageRgb8(b) => (3, scale8(b.as_raw())),
        DynamicImage::ImageRgba8(b) => (4, scale8(b.as_raw())),
        DynamicImage::ImageLuma16(b) => (1, scale16(b.as_raw())),
        DynamicImage::ImageLumaA16(b) => (2, scale16(b.as_raw())),
        DynamicImage::ImageRgb16(b) => (3, scale16(b.as_raw())),
        DynamicImage::ImageRgba16(b) => (4, scale16(b.as_raw())),
        DynamicImage::ImageRgb32F(b) => (3, b.into_raw()),
        other => (4, other.to_rgba32f().into_raw()),
    };
    Image {
        width,
        height,
        channels,
        data,
    }
}

fn scale8(v: &[u8]) -> Vec<f32> {
    v.iter().map(|&x| x as f32 / 255.0).collect()
}

fn scale16(v: &[u16]) -> Vec<f32> {
    v.iter().map(|&x| x as f32 / 65535.0).collect()
}

/// Bits per sample of a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitDepth {
    /// 8-bit samples.
    Eight,
    /// 16-bit samples (PNG only).
    Sixteen,
}

/// Converts to an `image` crate picture: values in `[0, 1]` are clamped and rounded to 8 or 16 bits.
/// Channels must be 1, 2, 3 or 4.
pub fn to_dynamic(image: &Image, depth: BitDepth) -> Result<DynamicImage> {
    let (w, h) = (image.width as u32, image.height as u32);
    let bad = || {
        DataError::value(
            "image",
            format!("cannot write {} channels (1-4 can be written)", image.channels),
        )
    };
    let missing = || DataError::value("image", "the pixel count does not match the size".to_string());
    Ok(match depth {
        BitDepth::Eight => {
            let v: Vec<u8> = image
                .data
                .iter()
                .map(|&x| (x.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect();
            match image.channels {
                1 => DynamicImage::ImageLuma8(image::ImageBuffer::from_raw(w, h, v).ok_or_else(missing)?),
                2 => DynamicImage::ImageLumaA8(image::ImageBuffer::from_raw(w, h, v).ok_or_else(missing)?),
                3 => DynamicImage::ImageRgb8(image::ImageBuffer::from_raw(w, h, v).ok_or_else(missing)?),
                4 => DynamicImage::ImageRgba8(image::ImageBuffer::from_raw(w, h, v).ok_or_else(missing)?),
                _ => return Err(bad()),
            }
        }
        BitDepth::Sixteen => {
            let v: Vec<u16> = image
                .data
                .iter()
                .map(|&x| (x.clamp(0.0, 1.0) * 65535.0).round() as u16)
                .collect();
            match image.channels {
                1 => DynamicImage::ImageLuma16(image::ImageBuffer::from_raw(w, h, v).ok_or_else(missing)?),
                2 => DynamicImage::ImageLumaA16(image::ImageBuffer::from_raw(w, h, v).ok_or_else(missing)?),
                3 => DynamicImage::ImageRgb16(image::ImageBuffer::from_raw(w, h, v).ok_or_else(missing)?),
                4 => DynamicImage::ImageRgba16(image::ImageBuffer::from_raw(w, h, v).ok_or_else(missing)?),
                _ => return Err(bad()),
            }
        }
    })
}

/// Writes a PNG (8- or 16-bit, the image's channels).
pub fn write_png(path: &Path, image: &Image, depth: BitDepth) -> Result<()> {
    let dynamic = to_dynamic(image, depth)?;
    dynamic
        .save_with_format(path, ImageFormat::Png)
        .map_err(|e| DataError::format(path, format!("cannot write PNG: {e}")))
}

/// Encodes a PNG (8- or 16-bit, the image's channels) in memory, for writing atomically.
pub fn encode_png(image: &Image, depth: BitDepth) -> Result<Vec<u8>> {
    let dynamic = to_dynamic(image, depth)?;
    let mut bytes = Vec::new();
    dynamic
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| DataError::value("png", format!("cannot encode PNG: {e}")))?;
    Ok(bytes)
}

/// Writes a baseline JPEG at `quality` (1-100); alpha is dropped, 16-bit is not possible.
pub fn write_jpeg(path: &Path, image: &Image, quality: u8) -> Result<()> {
    let flat = match image.channels {
        1 | 3 => image.clone(),
        2 => image.to_gray(),
        _ => image.to_rgb(),
    };
    let dynamic = to_dynamic(&flat, BitDepth::Eight)?;
    let file = std::fs::File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut out = std::io::BufWriter::new(file);
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
    dynamic
        .write_with_encoder(encoder)
        .map_err(|e| DataError::format(path, format!("cannot write JPEG: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fovea-image-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn gradient(w: usize, h: usize, c: usize) -> Image {
        let data = (0..w * h * c).map(|i| (i % 251) as f32 / 255.0).collect();
        Image::new(w, h, c, data).unwrap()
    }

    #[test]
    fn png_round_trips_8_and_16_bit() {
        for c in [1, 2, 3, 4] {
            let img = gradient(7, 5, c);
            let p = tmp(&format!("rt{c}.png"));
            write_png(&p, &img, BitDepth::Eight).unwrap();
            let back = read_image(&p).unwrap();
            assert_eq!((back.width, back.height, back.channels), (7, 5, c));
            for (a, b) in img.data.iter().zip(&back.data) {
                assert!((a - b).abs() < 0.5 / 255.0, "{a} {b}");
            }
        }
        let img = Image::new(2, 1, 1, vec![1000.0 / 65535.0, 1.0]).unwrap();
        let p = tmp("rt16.png");
        write_png(&p, &img, BitDepth::Sixteen).unwrap();
        let back = read_image(&p).unwrap();
        assert_eq!(back.data[0] * 65535.0, 1000.0);
    }

    #[test]
    fn jpeg_pgm_and_bmp_decode() {
        let img = gradient(16, 8, 3);
        let p = tmp("g.jpg");
        write_jpeg(&p, &img, 95).unwrap();
        let back = read_image(&p).unwrap();
        assert_eq!((back.width, back.height, back.channels), (16, 8, 3));
        let err: f32 = img.data.iter().zip(&back.data).map(|(a, b)| (a - b).abs()).sum::<f32>() / img.data.len() as f32;
        assert!(err < 0.05, "{err}");
        let p = tmp("g.pgm");
        let mut pgm = b"P5\n3 2\n255\n".to_vec();
        pgm.extend_from_slice(&[0, 51, 102, 153, 204, 255]);
        std::fs::write(&p, &pgm).unwrap();
        let back = read_image(&p).unwrap();
        assert_eq!((back.width, back.height, back.channels), (3, 2, 1));
        assert_eq!(back.data, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        let p = tmp("g.bmp");
        to_dynamic(&gradient(4, 3, 3), BitDepth::Eight)
            .unwrap()
            .save_with_format(&p, ImageFormat::Bmp)
            .unwrap();
        assert_eq!(read_image(&p).unwrap().channels, 3);
    }

    /// A PNG with a valid header chunk claiming `w` x `h` and a tiny, bogus image body.
    fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            out.extend_from_slice(&body);
            let mut crc = flate2::Crc::new();
            crc.update(&body);
            out.extend_from_slice(&crc.sum().to_be_bytes());
        }
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn a_huge_header_is_refused_before_decoding() {
        let p = tmp("huge.png");
        std::fs::write(&p, png_claiming(60_000, 60_000)).unwrap();
        let err = read_image(&p).unwrap_err().to_string();
        assert!(err.contains("huge.png") && err.contains("60000x60000"), "{err}");
        // Within the size limits but far more than the file can hold.
        std::fs::write(&p, png_claiming(8_000, 8_000)).unwrap();
        let err = read_image(&p).unwrap_err().to_string();
        assert!(err.contains("more than a") && err.contains("huge.png"), "{err}");
    }

    #[test]
    fn a_large_flat_image_that_compresses_well_is_accepted() {
        let p = tmp("flat.png");
        write_png(&p, &Image::filled(2048, 2048, 1, 0.5), BitDepth::Eight).unwrap();
        let bytes = std::fs::metadata(&p).unwrap().len();
        assert!(bytes < 40_000, "{bytes}");
        let back = read_image(&p).unwrap();
        assert_eq!((back.width, back.height), (2048, 2048));
    }

    #[test]
    fn truncated_and_foreign_files_are_errors_naming_the_file() {
        let img = gradient(32, 32, 3);
        let p = tmp("t.jpg");
        write_jpeg(&p, &img, 90).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let q = tmp("truncated.png");
        write_png(&q, &img, BitDepth::Eight).unwrap();
        let png = std::fs::read(&q).unwrap();
        std::fs::write(&q, &png[..png.len() / 2]).unwrap();
        let err = read_image(&q).unwrap_err().to_string();
        assert!(err.contains("truncated.png"), "{err}");
        std::fs::write(&p, &bytes[..20]).unwrap();
        assert!(read_image(&p).unwrap_err().to_string().contains("t.jpg"));
        std::fs::write(&p, b"hello, not an image").unwrap();
        let err = read_image(&p).unwrap_err().to_string();
        assert!(err.contains("unknown signature"), "{err}");
        let err = read_image(&tmp("absent.png")).unwrap_err().to_string();
        assert!(err.contains("absent.png"), "{err}");
    }
}
