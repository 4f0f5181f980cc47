//! What `complete` does to an upload's bytes: the magic bytes checked against the declared
//! type, images decoded in full, turned upright by their EXIF orientation and re-encoded as
//! WebP derivatives. Nothing of the original file's metadata (EXIF, GPS, ICC) survives: the
//! derivatives are made from pixels alone.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

/// The types an upload may declare.
pub const TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp", "application/pdf"];

/// The derivatives, by name and longest side.
pub const VARIANTS: [(&str, u32); 2] = [("thumb", 320), ("large", 1600)];

/// Images larger than this many pixels a side are refused before decoding (a decompression
/// bomb declares huge dimensions in a few bytes).
const MAX_SIDE: u32 = 12_000;
const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;
const WEBP_QUALITY: f32 = 82.0;

/// Whether the bytes start the way files of `content_type` do.
pub fn magic_matches(content_type: &str, bytes: &[u8]) -> bool {
    match content_type {
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/webp" => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        "application/pdf" => bytes.starts_with(b"%PDF-"),
        _ => false,
    }
}

/// A WebP derivative.
pub struct Derivative {
    pub variant: &'static str,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// An image decoded and re-encoded.
pub struct Processed {
    /// The SHA-256 of the uploaded bytes, hex: the content address of its derivatives.
    pub sha256: String,
    /// The upright image's size.
    pub width: u32,
    pub height: u32,
    pub derivatives: Vec<Derivative>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Decodes the whole image (a truncated or corrupt one is an error, in words a client can
/// read) and makes its derivatives. CPU-heavy: run it off the async workers.
pub fn process(content_type: &str, bytes: &[u8]) -> Result<Processed, String> {
    let format = match content_type {
        "image/jpeg" => ImageFormat::Jpeg,
        "image/png" => ImageFormat::Png,
        "image/webp" => ImageFormat::WebP,
        other => return Err(format!("{other} is not an image")),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let unreadable = |e: image::ImageError| format!("is not a readable image ({e})");
    let mut decoder = reader.into_decoder().map_err(unreadable)?;
    let orientation = decoder.orientation().map_err(unreadable)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    if width == 0 || height == 0 {
        return Err("is an empty image".into());
    }
    let derivatives = VARIANTS
        .iter()
        .map(|&(variant, side)| {
            let scaled = if width.max(height) > side {
                image.resize(side, side, FilterType::Triangle)
            } else {
                image.clone()
            };
            webp(variant, &scaled)
        })
        .collect();
    Ok(Processed {
        sha256: sha256_hex(bytes),
        width,
        height,
        derivatives,
    })
}

fn webp(variant: &'static str, image: &DynamicImage) -> Derivative {
    let (width, height) = (image.width(), image.height());
    let bytes = if image.color().has_alpha() {
        let rgba = image.to_rgba8();
        webp::Encoder::from_rgba(&rgba, width, height)
            .encode(WEBP_QUALITY)
            .to_vec()
    } else {
        let rgb = image.to_rgb8();
        webp::Encoder::from_rgb(&rgb, width, height)
            .encode(WEBP_QUALITY)
            .to_vec()
    };
    Derivative {
        variant,
        bytes,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgb8(width, height);
        let mut out = Cursor::new(Vec::new());
        image
            .write_to(&mut out, ImageFormat::Png)
            .expect("encode png");
        out.into_inner()
    }

    #[test]
    fn derivatives_are_scaled_down_never_up() {
        let big = process("image/png", &png(2000, 1000)).expect("processed");
        let sizes: Vec<_> = big
            .derivatives
            .iter()
            .map(|d| (d.width, d.height))
            .collect();
        assert_eq!(sizes, [(320, 160), (1600, 800)]);
        let small = process("image/png", &png(200, 100)).expect("processed");
        let sizes: Vec<_> = small
            .derivatives
            .iter()
            .map(|d| (d.width, d.height))
            .collect();
        assert_eq!(sizes, [(200, 100), (200, 100)]);
        for d in big.derivatives.iter().chain(&small.derivatives) {
            assert!(magic_matches("image/webp", &d.bytes));
        }
    }

    #[test]
    fn a_truncated_or_mislabelled_file_is_refused() {
        let bytes = png(64, 64);
        assert!(process("image/png", &bytes[..bytes.len() / 2]).is_err());
        assert!(!magic_matches("image/jpeg", &bytes));
        assert!(magic_matches("image/png", &bytes));
        assert!(process("image/jpeg", &bytes).is_err());
    }
}
