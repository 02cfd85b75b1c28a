//! Reading a picture for prediction: PNG (any colour type, 8 or 16 bits) or
//! PGM (`P2` text or `P5` binary), converted to grey and resized to the model's
//! input by area averaging.
//!
//! Grey is `0.299 R + 0.587 G + 0.114 B` (ITU-R BT.601), alpha composited over
//! white. Area averaging gives each output pixel the mean of the input area
//! it covers, which keeps thin strokes when a large picture shrinks to 28×28.
//!
//! Uses: `error`.

use crate::{Error, Result};
use std::path::Path;

/// A grey picture with values in `[0, 1]`, row-major `[height, width]`.
#[derive(Clone, Debug, PartialEq)]
pub struct GreyImage {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `height · width` values in `[0, 1]` (0 black, 1 white).
    pub pixels: Vec<f32>,
}

/// The most pixels [`GreyImage::open`] decodes: 2²⁶ (8192 × 8192). A header
/// that asks for more is refused before anything is allocated.
pub const MAX_PIXELS: usize = 1 << 26;

impl GreyImage {
    /// Reads a PNG or PGM file (recognized by its first bytes, not its name)
    /// of at most [`MAX_PIXELS`] pixels.
    pub fn open(path: &Path) -> Result<Self> {
        GreyImage::open_limited(path, MAX_PIXELS)
    }

    /// [`GreyImage::open`] with another limit on the number of pixels.
    pub fn open_limited(path: &Path, max_pixels: usize) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        if bytes.starts_with(b"\x89PNG") {
            decode_png(&bytes, max_pixels).map_err(|m| Error::format(path, m))
        } else if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
            decode_pgm(&bytes, max_pixels).map_err(|m| Error::format(path, m))
        } else {
            Err(Error::format(path, "not a PNG or PGM image (unrecognized first bytes)"))
        }
    }

    /// This picture resized to `height × width` by area averaging.
    pub fn resize(&self, height: usize, width: usize) -> GreyImage {
        let (sy, sx) = (self.height as f64 / height as f64, self.width as f64 / width as f64);
        let mut out = vec![0.0f32; height * width];
        for oy in 0..height {
            let (y0, y1) = (oy as f64 * sy, (oy + 1) as f64 * sy);
            for ox in 0..width {
                let (x0, x1) = (ox as f64 * sx, (ox + 1) as f64 * sx);
                let (mut sum, mut area) = (0.0f64, 0.0f64);
                for iy in y0.floor() as usize..(y1.ceil() as usize).min(self.height) {
                    let wy = (y1.min(iy as f64 + 1.0) - y0.max(iy as f64)).max(0.0);
                    for ix in x0.floor() as usize..(x1.ceil() as usize).min(self.width) {
                        let wx = (x1.min(ix as f64 + 1.0) - x0.max(ix as f64)).max(0.0);
                        sum += self.pixels[iy * self.width + ix] as f64 * wy * wx;
                        area += wy * wx;
                    }
                }
                out[oy * width + ox] = (sum / area.max(1e-12)) as f32;
            }
        }
        GreyImage { height, width, pixels: out }
    }

    /// The mean of the outermost rows and columns: near 1 for dark ink on a
    /// light background, near 0 for MNIST's light ink on black.
    pub fn border_mean(&self) -> f32 {
        let (h, w) = (self.height, self.width);
        let border: Vec<f32> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (y, x)))
            .filter(|&(y, x)| y == 0 || x == 0 || y == h - 1 || x == w - 1)
            .map(|(y, x)| self.pixels[y * w + x])
            .collect();
        border.iter().sum::<f32>() / border.len().max(1) as f32
    }
}

/// A picture of one digit prepared as MNIST's were, by [`GreyImage::as_mnist_digit`].
#[derive(Clone, Debug, PartialEq)]
pub struct MnistDigit {
    /// Light ink on black, `[height, width]`.
    pub image: GreyImage,
    /// Whether the picture was dark ink on a light background, and so inverted.
    pub inverted: bool,
}

impl GreyImage {
    /// This picture of one digit made into a `height × width` input as MNIST's
    /// digits were made (LeCun et al.): light ink on black (the picture is
    /// inverted when its border is light), the background level subtracted
    /// and the ink stretched to reach 1, cropped to the ink's bounding box,
    /// scaled by area averaging so that its longer side is 20/28 of the
    /// output's, and placed with its centre of mass `Σ v·(y, x) / Σ v` on the
    /// output's centre `(height/2, width/2)`. A picture without ink is only resized.
    ///
    /// ```
    /// use saddle::data::GreyImage;
    /// // A dark bar in the top-left corner of a white 60×60 picture.
    /// let mut pixels = vec![1.0; 60 * 60];
    /// (2..32).for_each(|y| (5..11).for_each(|x| pixels[y * 60 + x] = 0.0));
    /// let digit = GreyImage { height: 60, width: 60, pixels }.as_mnist_digit(28, 28);
    /// assert!(digit.inverted);
    /// let rows: Vec<usize> = (0..28).filter(|y| digit.image.pixels[y * 28..][..28].iter().any(|&v| v > 0.0)).collect();
    /// assert_eq!((rows[0], rows.len()), (5, 20)); // 20 rows of ink, their centre of mass (9.5) moved to row 14.5
    /// ```
    pub fn as_mnist_digit(&self, height: usize, width: usize) -> MnistDigit {
        let inverted = self.border_mean() > 0.5;
        let ink: Vec<f32> = self.pixels.iter().map(|&p| if inverted { 1.0 - p } else { p }).collect();
        let background = GreyImage { pixels: ink.clone(), ..*self }.border_mean();
        let top = ink.iter().cloned().fold(0.0f32, f32::max);
        if top - background < 1e-3 {
            return MnistDigit { image: self.resize(height, width), inverted };
        }
        let ink: Vec<f32> = ink.iter().map(|&v| ((v - background) / (top - background)).clamp(0.0, 1.0)).collect();
        // The bounding box of the ink (values above 5% of the stroke, so speckle does not widen it).
        let (w, mut box_) = (self.width, (usize::MAX, usize::MAX, 0, 0));
        for (i, _) in ink.iter().enumerate().filter(|(_, &v)| v > 0.05) {
            let (y, x) = (i / w, i % w);
            box_ = (box_.0.min(y), box_.1.min(x), box_.2.max(y + 1), box_.3.max(x + 1));
        }
        let (y0, x0, y1, x1) = box_;
        let crop = GreyImage {
            height: y1 - y0,
            width: x1 - x0,
            pixels: (y0..y1).flat_map(|y| ink[y * w + x0..y * w + x1].iter().copied()).collect(),
        };
        // The longer side scaled to 20/28 of the output's.
        let fit = (20.0 * height.min(width) as f64 / 28.0).max(1.0);
        let scale = fit / crop.height.max(crop.width) as f64;
        let (bh, bw) = (
            ((crop.height as f64 * scale).round() as usize).clamp(1, height),
            ((crop.width as f64 * scale).round() as usize).clamp(1, width),
        );
        let digit = crop.resize(bh, bw);
        let mass: f64 = digit.pixels.iter().map(|&v| v as f64).sum();
        let centre = |index: &dyn Fn(usize) -> usize| {
            digit.pixels.iter().enumerate().map(|(i, &v)| v as f64 * index(i) as f64).sum::<f64>() / mass
        };
        let (cy, cx) = (centre(&|i| i / bw), centre(&|i| i % bw));
        // The offset that puts the centre of mass on the centre, kept inside the output.
        let place =
            |c: f64, out: usize, size: usize| ((out as f64 / 2.0 - c).round().max(0.0) as usize).min(out - size);
        let (oy, ox) = (place(cy, height, bh), place(cx, width, bw));
        let mut pixels = vec![0.0f32; height * width];
        for y in 0..bh {
            pixels[(oy + y) * width + ox..][..bw].copy_from_slice(&digit.pixels[y * bw..][..bw]);
        }
        MnistDigit { image: GreyImage { height, width, pixels }, inverted }
    }
}

/// `w × h` pixels, refused when more than `max_pixels`.
pub(crate) fn within(w: usize, h: usize, max_pixels: usize, kind: &str) -> std::result::Result<(), String> {
    if w.checked_mul(h).is_none_or(|n| n > max_pixels) {
        return Err(format!("{kind} of {w}×{h} pixels; saddle reads at most {max_pixels} pixels"));
    }
    Ok(())
}

/// Checks the palette chunks that the `png` crate (0.18) trusts: a `PLTE`
/// whose length is not a multiple of 3, or a `tRNS` longer than the palette,
/// makes its palette expansion index out of bounds.
fn check_palette(bytes: &[u8]) -> std::result::Result<(), String> {
    let (mut pos, mut colours) = (8usize, None);
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"PLTE" if len % 3 != 0 || len > 768 => {
                return Err(format!("PNG palette (PLTE) of {len} bytes; it must hold 1 to 256 RGB triples"))
            }
            b"PLTE" => colours = Some(len / 3),
            b"tRNS" if colours.is_some_and(|c| len > c) => {
                return Err(format!(
                    "PNG transparency (tRNS) of {len} entries for a palette of {}",
                    colours.unwrap_or(0)
                ))
            }
            b"IDAT" | b"IEND" => break,
            _ => {}
        }
        pos = pos.saturating_add(12).saturating_add(len);
    }
    Ok(())
}

/// The 8-bit samples of a PNG (palettes expanded, 16 bits cut to 8):
/// `(width, height, channels, samples)`, channels interleaved (grey, grey and
/// alpha, RGB or RGBA).
pub(crate) fn png_samples(
    bytes: &[u8],
    max_pixels: usize,
) -> std::result::Result<(usize, usize, usize, Vec<u8>), String> {
    check_palette(bytes)?;
    // A decoder that panics on a file it was not made for is a format error of that file.
    std::panic::catch_unwind(|| png_samples_unchecked(bytes, max_pixels))
        .unwrap_or_else(|_| Err("the PNG decoder failed on this file: it is malformed".into()))
}

fn png_samples_unchecked(
    bytes: &[u8],
    max_pixels: usize,
) -> std::result::Result<(usize, usize, usize, Vec<u8>), String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| format!("unreadable PNG ({e})"))?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    within(w, h, max_pixels, "PNG")?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("PNG too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| format!("unreadable PNG ({e})"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    buf.truncate(info.buffer_size());
    if buf.len() != w * h * channels || w == 0 || h == 0 {
        return Err(format!("PNG of {w}×{h} pixels has no usable image data"));
    }
    Ok((w, h, channels, buf))
}

fn decode_png(bytes: &[u8], max_pixels: usize) -> std::result::Result<GreyImage, String> {
    let (w, h, channels, data) = png_samples(bytes, max_pixels)?;
    let pixels = data
        .chunks_exact(channels)
        .map(|p| {
            let v = |i: usize| p[i] as f32 / 255.0;
            let (grey, alpha) = match channels {
                1 => (v(0), 1.0),
                2 => (v(0), v(1)),
                3 => (0.299 * v(0) + 0.587 * v(1) + 0.114 * v(2), 1.0),
                _ => (0.299 * v(0) + 0.587 * v(1) + 0.114 * v(2), v(3)),
            };
            grey * alpha + (1.0 - alpha)
        })
        .collect::<Vec<f32>>();
    Ok(GreyImage { height: h, width: w, pixels })
}

fn decode_pgm(bytes: &[u8], max_pixels: usize) -> std::result::Result<GreyImage, String> {
    // Header: magic, width, height, maxval, separated by whitespace and comments.
    let mut pos = 2;
    let mut fields = Vec::new();
    while fields.len() < 3 {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b'#') {
            if bytes[pos] == b'#' {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
            } else {
                pos += 1;
            }
        }
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let field = std::str::from_utf8(&bytes[start..pos]).ok().and_then(|s| s.parse::<usize>().ok());
        fields.push(field.ok_or("PGM header: expected width, height and maximum value")?);
    }
    let (w, h, maxval) = (fields[0], fields[1], fields[2]);
    if w == 0 || h == 0 || maxval == 0 || maxval > 65535 {
        return Err(format!("PGM header: width {w}, height {h}, maximum {maxval} are out of range"));
    }
    within(w, h, max_pixels, "PGM")?;
    let n = w * h;
    let values: Vec<usize> = if bytes.starts_with(b"P5") {
        let data = bytes.get(pos + 1..).unwrap_or(&[]);
        let size = if maxval < 256 { 1 } else { 2 };
        if data.len() < n * size {
            return Err(format!("PGM data: {} bytes for {w}×{h} pixels, expected {}", data.len(), n * size));
        }
        if size == 1 {
            data[..n].iter().map(|&b| b as usize).collect()
        } else {
            data[..2 * n].chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize).collect()
        }
    } else {
        let text = std::str::from_utf8(&bytes[pos..]).map_err(|_| "PGM text data is not ASCII")?;
        let v: std::result::Result<Vec<usize>, _> = text.split_ascii_whitespace().take(n).map(str::parse).collect();
        let v = v.map_err(|_| "PGM text data: expected numbers")?;
        if v.len() < n {
            return Err(format!("PGM data: {} values for {w}×{h} pixels", v.len()));
        }
        v
    };
    let pixels = values.iter().map(|&v| v.min(maxval) as f32 / maxval as f32).collect();
    Ok(GreyImage { height: h, width: w, pixels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgm_both_kinds_and_resize() {
        let text = decode_pgm(b"P2\n# a comment\n2 2\n255\n0 255\n255 0\n", MAX_PIXELS).unwrap();
        assert_eq!(text.pixels, vec![0.0, 1.0, 1.0, 0.0]);
        let bin = decode_pgm(b"P5 2 2 255\n\x00\xff\xff\x00", MAX_PIXELS).unwrap();
        assert_eq!(bin, text);
        let small = text.resize(1, 1);
        assert_eq!(small.pixels, vec![0.5]);
        let big = text.resize(4, 4);
        assert_eq!(big.pixels[0], 0.0);
        assert_eq!(big.pixels[3], 1.0);
        assert!(decode_pgm(b"P5 2 2 255\n\x00", MAX_PIXELS).unwrap_err().contains("expected 4"));
    }

    /// MNIST's own digits, moved off-centre onto a larger white page in dark
    /// ink, come back as they were: the preparation is the one they had.
    #[test]
    fn mnist_digits_moved_and_inverted_come_back_as_they_were() {
        let test = crate::data::load_idx_test(&crate::data::bundled_mnist()).unwrap();
        let mut exact = 0;
        for k in 0..200 {
            let digit: Vec<f32> = test.images[k * 784..][..784].iter().map(|&b| b as f32 / 255.0).collect();
            let mut page = vec![1.0f32; 64 * 64];
            for y in 0..28 {
                for x in 0..28 {
                    page[(y + 2) * 64 + x + 33] = 1.0 - digit[y * 28 + x];
                }
            }
            let back = GreyImage { height: 64, width: 64, pixels: page }.as_mnist_digit(28, 28);
            assert!(back.inverted);
            exact += back.image.pixels.iter().zip(&digit).all(|(a, b)| (a - b).abs() < 1e-5) as usize;
        }
        // Digits whose ink reaches 255 and whose box is 20 pixels long come back bit for bit
        // (168 of these 200); the others are stretched or rescaled.
        assert!(exact >= 150, "{exact} of 200 digits came back as they were");
    }

    #[test]
    fn png_round_trip() {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, 2, 1);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&[255, 255, 255, 0, 0, 0]).unwrap();
        }
        let img = decode_png(&bytes, MAX_PIXELS).unwrap();
        assert_eq!((img.height, img.width), (1, 2));
        assert!((img.pixels[0] - 1.0).abs() < 1e-6 && img.pixels[1] == 0.0);
    }

    /// A PNG from its chunks: `(type, data)`, each with its length and CRC.
    fn png_of(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in chunks {
            out.extend((data.len() as u32).to_be_bytes());
            let body = [&kind[..], data].concat();
            out.extend(&body);
            out.extend(crc32(&body).to_be_bytes());
        }
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

    fn ihdr(w: u32, h: u32, colour: u8) -> Vec<u8> {
        [&w.to_be_bytes()[..], &h.to_be_bytes(), &[8, colour, 0, 0, 0]].concat()
    }

    fn zlib(raw: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(raw).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn hostile_pngs_are_format_errors() {
        // A palette of one colour, and pixels that index past it.
        let palette = png_of(&[
            (b"IHDR", ihdr(2, 2, 3)),
            (b"PLTE", vec![10, 20, 30]),
            (b"IDAT", zlib(&[0, 0, 5, 0, 200, 7])),
            (b"IEND", vec![]),
        ]);
        assert!(decode_png(&palette, MAX_PIXELS).is_ok(), "indices past the palette read as black, as libpng does");
        // A palette of 4 bytes, which the png crate would index past.
        let short = png_of(&[
            (b"IHDR", ihdr(2, 2, 3)),
            (b"PLTE", vec![10, 20, 30, 40]),
            (b"IDAT", zlib(&[0, 0, 0, 0, 0, 0])),
            (b"IEND", vec![]),
        ]);
        let e = decode_png(&short, MAX_PIXELS).unwrap_err();
        assert!(e.contains("PLTE) of 4 bytes"), "{e}");
        // A header claiming 300 × 2147483647 pixels: refused before any allocation.
        let huge = png_of(&[(b"IHDR", ihdr(300, 2_147_483_647, 0)), (b"IDAT", zlib(&[0])), (b"IEND", vec![])]);
        let e = decode_png(&huge, MAX_PIXELS).unwrap_err();
        assert!(e.contains("300×2147483647") && e.contains("at most"), "{e}");
        let e = decode_pgm(b"P5 100000 100000 255\n", MAX_PIXELS).unwrap_err();
        assert!(e.contains("at most"), "{e}");
    }
}
