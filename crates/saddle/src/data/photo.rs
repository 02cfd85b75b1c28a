//! Colour pictures: JPEG and PNG decoded to RGB bytes, and resized with an
//! antialiasing filter.
//!
//! Letters: H, W height and width; pixels are kept as `[3, H, W]` planes of
//! `u8` (R, G, B), the layout of a batch.
//!
//! Grey pictures become RGB by repeating the grey value; alpha is dropped.
//! Resizing is separable with a triangle (bilinear) kernel whose support
//! grows with the reduction factor (`max(1, in/out)` pixels each side), which
//! is Pillow's and torchvision's `antialias=True` bilinear: a large photo
//! shrunk to 32×32 averages every pixel it covers instead of sampling a few.
//!
//! Uses: `data::picture` (PNG samples), `error`.

use super::picture::{png_samples, within};
use super::MAX_PIXELS;
use crate::{Error, Result};
use std::path::Path;

/// An RGB picture: `[3, height, width]` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    /// Rows H.
    pub height: usize,
    /// Columns W.
    pub width: usize,
    /// The R, G and B planes, each `H·W` bytes, row-major.
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// Reads a JPEG or PNG file (recognized by its first bytes, not its name)
    /// of at most [`MAX_PIXELS`] pixels.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        RgbImage::decode(&bytes, MAX_PIXELS).map_err(|m| Error::format(path, m))
    }

    /// Decodes JPEG or PNG bytes of at most `max_pixels` pixels; the error says what is wrong.
    pub fn decode(bytes: &[u8], max_pixels: usize) -> std::result::Result<Self, String> {
        let (w, h, channels, samples) = if bytes.starts_with(b"\x89PNG") {
            png_samples(bytes, max_pixels)?
        } else if bytes.starts_with(&[0xFF, 0xD8]) {
            // A decoder that panics on a file it was not made for is a format error of that file.
            std::panic::catch_unwind(|| jpeg_samples(bytes, max_pixels))
                .unwrap_or_else(|_| Err("the JPEG decoder failed on this file: it is malformed".into()))?
        } else {
            return Err("not a JPEG or PNG image (unrecognized first bytes)".into());
        };
        let plane = w * h;
        let mut pixels = vec![0u8; 3 * plane];
        for (i, p) in samples.chunks_exact(channels).enumerate() {
            let rgb = if channels >= 3 { [p[0], p[1], p[2]] } else { [p[0]; 3] };
            for (c, v) in rgb.into_iter().enumerate() {
                pixels[c * plane + i] = v;
            }
        }
        Ok(RgbImage { height: h, width: w, pixels })
    }

    /// This picture resized to `height × width` with the antialiasing
    /// triangle filter (identity when the size is already that).
    ///
    /// ```
    /// use saddle::data::RgbImage;
    /// let two = RgbImage { height: 1, width: 2, pixels: vec![0, 200, 0, 200, 0, 200] };
    /// assert_eq!(two.resize(1, 1).pixels, vec![100, 100, 100]); // the mean of both pixels
    /// ```
    pub fn resize(&self, height: usize, width: usize) -> RgbImage {
        if (height, width) == (self.height, self.width) {
            return self.clone();
        }
        let (rows, cols) = (weights(self.height, height), weights(self.width, width));
        let mut pixels = Vec::with_capacity(3 * height * width);
        let mut wide = vec![0.0f32; self.height * width];
        for plane in self.pixels.chunks_exact(self.height * self.width) {
            // Columns first: [H, W] → [H, width].
            for (y, row) in plane.chunks_exact(self.width).enumerate() {
                for (x, (start, ws)) in cols.iter().enumerate() {
                    wide[y * width + x] = ws.iter().zip(&row[*start..]).map(|(w, &v)| w * v as f32).sum();
                }
            }
            for (start, ws) in &rows {
                for x in 0..width {
                    let v: f32 = ws.iter().enumerate().map(|(k, w)| w * wide[(start + k) * width + x]).sum();
                    pixels.push(v.round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        RgbImage { height, width, pixels }
    }
}

/// For each of `output` positions along an axis of `input` pixels: the first
/// input pixel it reads and the normalized triangle weights of those it reads.
fn weights(input: usize, output: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = input as f64 / output as f64;
    let support = scale.max(1.0);
    (0..output)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let lo = (center - support).floor().max(0.0) as usize;
            let hi = ((center + support).ceil() as usize).min(input);
            let raw: Vec<f64> =
                (lo..hi).map(|j| (1.0 - ((j as f64 + 0.5 - center) / support).abs()).max(0.0)).collect();
            let total: f64 = raw.iter().sum();
            (lo, raw.iter().map(|w| (w / total) as f32).collect())
        })
        .collect()
}

/// The RGB (or grey) samples of a JPEG, interleaved: `(width, height, channels, samples)`.
fn jpeg_samples(bytes: &[u8], max_pixels: usize) -> std::result::Result<(usize, usize, usize, Vec<u8>), String> {
    use zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_strict_mode(true)
        .set_max_width(1 << 16)
        .set_max_height(1 << 16);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| format!("unreadable JPEG ({e:?})"))?;
    let info = decoder.info().ok_or("unreadable JPEG (no frame header)")?;
    let (w, h) = (info.width as usize, info.height as usize);
    within(w, h, max_pixels, "JPEG")?;
    let samples = decoder.decode().map_err(|e| format!("unreadable JPEG ({e:?})"))?;
    let channels = decoder.output_colorspace().map_or(3, |c| c.num_components());
    if w == 0 || h == 0 || channels == 0 || samples.len() != w * h * channels {
        return Err(format!("JPEG of {w}×{h} pixels has no usable image data"));
    }
    Ok((w, h, channels, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u16, h: u16, rgb: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 95).encode(rgb, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
        out
    }

    #[test]
    fn jpeg_and_png_decode_to_the_same_planes() {
        // 2×2: red, green / blue, white.
        let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
        let img = RgbImage::decode(&jpeg(2, 2, &rgb), MAX_PIXELS).unwrap();
        assert_eq!((img.height, img.width), (2, 2));
        let want: [u8; 12] = [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255];
        assert!(img.pixels.iter().zip(want).all(|(&a, b)| (a as i32 - b as i32).abs() < 40), "{:?}", img.pixels);
        let mut png = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png, 2, 2);
            enc.set_color(png::ColorType::Rgba);
            let mut w = enc.write_header().unwrap();
            let rgba: Vec<u8> = rgb.chunks(3).flat_map(|p| [p[0], p[1], p[2], 7]).collect();
            w.write_image_data(&rgba).unwrap();
        }
        assert_eq!(RgbImage::decode(&png, MAX_PIXELS).unwrap().pixels, want, "alpha is dropped");
        let mut grey = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut grey, 2, 1);
            enc.set_color(png::ColorType::Grayscale);
            enc.write_header().unwrap().write_image_data(&[10, 20]).unwrap();
        }
        assert_eq!(RgbImage::decode(&grey, MAX_PIXELS).unwrap().pixels, [10, 20, 10, 20, 10, 20]);
    }

    #[test]
    fn truncated_and_foreign_files_are_errors() {
        let rgb: Vec<u8> = (0..16 * 16 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let whole = jpeg(16, 16, &rgb);
        assert!(RgbImage::decode(&whole, MAX_PIXELS).is_ok());
        let e = RgbImage::decode(&whole[..whole.len() / 2], MAX_PIXELS).unwrap_err();
        assert!(e.contains("JPEG"), "{e}");
        assert!(RgbImage::decode(&whole, 100).unwrap_err().contains("at most 100 pixels"));
        assert!(RgbImage::decode(b"GIF89a", MAX_PIXELS).unwrap_err().contains("not a JPEG or PNG"));
    }

    #[test]
    fn resizing_averages_what_it_covers() {
        // A 4×4 checkerboard of 0 and 200 shrinks to a flat 100; a flat picture stays flat when grown.
        let board: Vec<u8> = (0..3 * 16).map(|i| if (i % 4 + (i / 4) % 4) % 2 == 0 { 0 } else { 200 }).collect();
        let img = RgbImage { height: 4, width: 4, pixels: board };
        assert!(img.resize(1, 1).pixels.iter().all(|&v| v == 100));
        assert!(img.resize(2, 2).pixels.iter().all(|&v| (60..=140).contains(&v)), "no aliasing to 0 or 200");
        let flat = RgbImage { height: 2, width: 3, pixels: vec![50; 18] };
        let big = flat.resize(7, 5);
        assert_eq!((big.height, big.width, big.pixels.len()), (7, 5, 105));
        assert!(big.pixels.iter().all(|&v| v == 50));
        assert_eq!(img.resize(4, 4), img);
    }
}
