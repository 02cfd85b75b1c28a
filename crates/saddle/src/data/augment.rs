//! Training-time augmentation of `u8` images: random crop with padding,
//! horizontal flip and cutout, drawn per example from `(seed, epoch, index)`.
//!
//! Letters: C channels, H, W height and width, P crop padding, S cutout side.
//!
//! - **crop P**: the image, padded with P zero pixels on each side, is cut
//!   back to `H × W` at an offset `(dy, dx)` uniform in `[0, 2P]²`
//!   (torchvision's `RandomCrop(size, padding=P)`): it moves by up to P pixels.
//! - **flip**: mirrored left to right with probability ½ (`RandomHorizontalFlip`).
//! - **cutout S**: an `S × S` square centred at a uniform pixel, clipped to the
//!   image, set to the channel's mean byte, which normalizes to about 0
//!   (DeVries and Taylor 2017).
//!
//! Each example's draws come from a generator seeded by the run's seed, the
//! epoch and the example's index alone, so a batch is the same bits whatever
//! the number of threads, the batch it is in, or a resume in the middle of
//! an epoch.
//!
//! Uses: `rng`, `error`.

use crate::{Error, Result, Rng};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Crop padding when `crop` is given without a number (CIFAR's usual 4).
pub const DEFAULT_CROP: usize = 4;
/// Cutout side when `cutout` is given without a number (8, for 32×32 images).
pub const DEFAULT_CUTOUT: usize = 8;

/// Which augmentations a run applies to its training batches; the default is none.
///
/// Its text form (`--augment`) lists them: `crop,flip`, `crop:2,flip,cutout:12`, `none`.
///
/// ```
/// use saddle::data::Augment;
/// let a: Augment = "crop,flip".parse().unwrap();
/// assert_eq!(a, Augment { crop: 4, flip: true, cutout: 0 });
/// assert_eq!(a.to_string(), "crop:4,flip");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Augment {
    /// Random-crop padding P (0: no crop).
    pub crop: usize,
    /// Random horizontal flip.
    pub flip: bool,
    /// Cutout side S (0: none).
    pub cutout: usize,
}

impl Augment {
    /// Whether it changes nothing.
    pub fn is_none(&self) -> bool {
        *self == Augment::default()
    }

    /// Augments one `[C, H, W]` image into `out`, with the draws of example
    /// `index` in epoch `epoch`; `fill` is each channel's cutout value.
    /// The seed of example `index`'s draws in epoch `epoch` of a run seeded `seed`.
    pub fn key(seed: u64, epoch: usize, index: usize) -> u64 {
        seed ^ (epoch as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407)
            ^ (index as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25)
    }

    /// Augments one `[C, H, W]` image into `out` with the draws of `key`
    /// ([`Augment::key`]); `fill` is each channel's cutout value.
    pub fn apply(&self, image: &[u8], shape: [usize; 3], fill: &[u8], key: u64, out: &mut [u8]) {
        let [c, h, w] = shape;
        let mut rng = Rng::new(key);
        let p = self.crop as isize;
        let (dy, dx) = if self.crop > 0 {
            (rng.below(2 * self.crop + 1) as isize - p, rng.below(2 * self.crop + 1) as isize - p)
        } else {
            (0, 0)
        };
        let flip = self.flip && rng.below(2) == 1;
        for ch in 0..c {
            let (src, dst) = (&image[ch * h * w..][..h * w], &mut out[ch * h * w..][..h * w]);
            for y in 0..h {
                let sy = y as isize + dy;
                let row = &mut dst[y * w..][..w];
                if sy < 0 || sy >= h as isize {
                    row.fill(0);
                    continue;
                }
                let srow = &src[sy as usize * w..][..w];
                for (x, v) in row.iter_mut().enumerate() {
                    let x = if flip { w - 1 - x } else { x };
                    let sx = x as isize + dx;
                    *v = if sx < 0 || sx >= w as isize { 0 } else { srow[sx as usize] };
                }
            }
        }
        if self.cutout > 0 {
            let (cy, cx) = (rng.below(h) as isize, rng.below(w) as isize);
            let half = (self.cutout / 2) as isize;
            let rows =
                (cy - half).max(0) as usize..((cy - half + self.cutout as isize).min(h as isize)).max(0) as usize;
            let cols =
                (cx - half).max(0) as usize..((cx - half + self.cutout as isize).min(w as isize)).max(0) as usize;
            for ch in 0..c {
                for y in rows.clone() {
                    out[ch * h * w + y * w..][cols.clone()].fill(fill[ch]);
                }
            }
        }
    }

    /// Checks the sizes against `[C, H, W]` images.
    pub fn validate(&self, shape: [usize; 3]) -> Result<()> {
        let side = shape[1].min(shape[2]);
        if self.crop >= side || self.cutout > side {
            return Err(Error::config(
                "augment",
                format!(
                    "crop padding {} and cutout {} must be smaller than the images' side of {side} pixels",
                    self.crop, self.cutout
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Augment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.crop > 0 {
            parts.push(format!("crop:{}", self.crop));
        }
        if self.flip {
            parts.push("flip".into());
        }
        if self.cutout > 0 {
            parts.push(format!("cutout:{}", self.cutout));
        }
        if parts.is_empty() {
            parts.push("none".into());
        }
        write!(f, "{}", parts.join(","))
    }
}

impl FromStr for Augment {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let mut a = Augment::default();
        for part in s.split(',').map(str::trim) {
            let (name, value) = match part.split_once(':') {
                Some((n, v)) => (n, Some(v)),
                None => (part, None),
            };
            let number = |default: usize| -> Result<usize> {
                value.map_or(Ok(default), |v| {
                    v.parse::<usize>().ok().filter(|&n| (1..=1024).contains(&n)).ok_or_else(|| {
                        Error::config(
                            "augment",
                            format!("'{part}': the size after ':' must be a whole number from 1 to 1024"),
                        )
                    })
                })
            };
            match name {
                "none" if s.trim() == "none" => {}
                "crop" => a.crop = number(DEFAULT_CROP)?,
                "flip" if value.is_none() => a.flip = true,
                "cutout" => a.cutout = number(DEFAULT_CUTOUT)?,
                _ => {
                    return Err(Error::config(
                        "augment",
                        format!("'{part}' is not an augmentation; expected a list of crop[:PADDING], flip, cutout[:SIDE], or none"),
                    ))
                }
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_bad_names_are_errors() {
        for text in ["none", "crop:4,flip", "flip,cutout:8", "crop:2,flip,cutout:12"] {
            let a: Augment = text.parse().unwrap();
            assert_eq!(a.to_string(), text);
        }
        assert_eq!("cutout".parse::<Augment>().unwrap().cutout, DEFAULT_CUTOUT);
        for (bad, needle) in [
            ("rotate", "'rotate' is not an augmentation"),
            ("crop:0", "from 1 to 1024"),
            ("flip:2", "'flip:2'"),
            ("none,flip", "'none'"),
        ] {
            let e = bad.parse::<Augment>().unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        assert!(Augment { crop: 4, ..Default::default() }.validate([3, 4, 4]).is_err());
    }

    #[test]
    fn each_augmentation_does_what_it_says_and_is_seeded_per_example() {
        let shape = [1, 4, 4];
        let image: Vec<u8> = (1..=16).collect();
        let mut out = vec![0u8; 16];
        let mut flipped = 0;
        for index in 0..64 {
            Augment { flip: true, ..Default::default() }.apply(
                &image,
                shape,
                &[0],
                Augment::key(1, 0, index),
                &mut out,
            );
            if out != image {
                assert_eq!(out[..4], [4, 3, 2, 1], "mirrored");
                flipped += 1;
            }
        }
        assert!((16..48).contains(&flipped), "about half of 64 flipped, got {flipped}");
        // A crop moves the picture by up to P pixels and fills with zeros.
        let crop = Augment { crop: 1, ..Default::default() };
        let mut offsets = std::collections::BTreeSet::new();
        for index in 0..200 {
            crop.apply(&image, shape, &[0], Augment::key(1, 0, index), &mut out);
            let at = image.iter().position(|&v| v == out[5]).unwrap();
            offsets.insert((at / 4, at % 4));
            assert!(out.iter().filter(|&&v| v == 0).count() <= 7);
        }
        assert_eq!(offsets.len(), 9, "every offset of [-1, 1]² appears: {offsets:?}");
        let cut = Augment { cutout: 2, ..Default::default() };
        cut.apply(&image, shape, &[99], Augment::key(1, 0, 3), &mut out);
        assert!((1..=4).contains(&out.iter().filter(|&&v| v == 99).count()));
        // The same (seed, epoch, index) gives the same bits; another epoch another draw.
        let all = Augment { crop: 1, flip: true, cutout: 2 };
        let draw = |epoch, index| {
            let mut o = vec![0u8; 16];
            all.apply(&image, shape, &[0], Augment::key(7, epoch, index), &mut o);
            o
        };
        assert_eq!(draw(2, 5), draw(2, 5));
        assert!((0..10).any(|e| draw(e, 5) != draw(2, 5)));
    }
}
