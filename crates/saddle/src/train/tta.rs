//! Test-time augmentation: the logits of an image averaged over views of it
//! (the image, its mirror image, and translations of both).
//!
//! Uses: `nn` (the model), `tensor`, `error`.

use crate::nn::Module;
use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Test-time augmentation of images `[N, C, H, W]`: the logits of each image
/// are averaged over views of it. With `m(x) = (f(x) + f(mirror(x)))/2`, the
/// mean over the image and its mirror image (along `W`):
///
/// - `Flip`: `m(x)`;
/// - `FlipTranslate`: `m(x)/2 + m(x↘)/4 + m(x↖)/4`, with `x↘` and `x↖` the
///   image moved by one pixel down-right and up-left, the border reflected
///   (airbench's level 2).
///
/// Its text form is `none`, `flip` or `flip-translate` (`false` and `true`
/// also read as `none` and `flip`, as in run files of earlier versions).
///
/// ```
/// use saddle::train::Tta;
/// assert_eq!("flip-translate".parse::<Tta>().unwrap(), Tta::FlipTranslate);
/// assert_eq!(serde_json::from_str::<Tta>("true").unwrap(), Tta::Flip);
/// assert_eq!(serde_json::to_string(&Tta::None).unwrap(), r#""none""#);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "TtaText")]
pub enum Tta {
    /// Each image as it is.
    #[default]
    None,
    /// The image and its mirror image.
    Flip,
    /// The mirror pairs of the image and of two translations of it.
    FlipTranslate,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TtaText {
    Flag(bool),
    Name(String),
}

impl TryFrom<TtaText> for Tta {
    type Error = Error;
    fn try_from(t: TtaText) -> Result<Tta> {
        match t {
            TtaText::Flag(b) => Ok(if b { Tta::Flip } else { Tta::None }),
            TtaText::Name(n) => n.parse(),
        }
    }
}

impl From<Tta> for String {
    fn from(t: Tta) -> String {
        t.to_string()
    }
}

impl fmt::Display for Tta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tta::None => "none",
            Tta::Flip => "flip",
            Tta::FlipTranslate => "flip-translate",
        })
    }
}

impl FromStr for Tta {
    type Err = Error;
    fn from_str(s: &str) -> Result<Tta> {
        match s {
            "none" | "false" => Ok(Tta::None),
            "flip" | "true" => Ok(Tta::Flip),
            "flip-translate" => Ok(Tta::FlipTranslate),
            _ => Err(Error::config("tta", format!("'{s}' is not one of: none, flip, flip-translate"))),
        }
    }
}

impl Tta {
    /// The averaged logits of `model` over this augmentation's views of `x`.
    pub fn logits(self, model: &dyn Module, x: &Tensor) -> Tensor {
        let mirror_mean = |x: &Tensor| {
            let w = x.shape()[3];
            let mirrored = x.index_select(3, &(0..w).rev().collect::<Vec<_>>());
            model.forward(x).add(&model.forward(&mirrored)).mul_scalar(0.5)
        };
        match self {
            Tta::None => model.forward(x),
            Tta::Flip => mirror_mean(x),
            Tta::FlipTranslate => {
                let (h, w) = (x.shape()[2], x.shape()[3]);
                // Reflected indices of a shift by one: [1, 0, 1, …, n−2] and [1, 2, …, n−1, n−2].
                let down = |n: usize| (0..n).map(|i| if i == 0 { 1.min(n - 1) } else { i - 1 }).collect::<Vec<_>>();
                let up =
                    |n: usize| (0..n).map(|i| if i + 1 == n { n.saturating_sub(2) } else { i + 1 }).collect::<Vec<_>>();
                let a = x.index_select(2, &down(h)).index_select(3, &down(w));
                let b = x.index_select(2, &up(h)).index_select(3, &up(w));
                let shifted = mirror_mean(&a).add(&mirror_mean(&b)).mul_scalar(0.25);
                mirror_mean(x).mul_scalar(0.5).add(&shifted)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flip-translate views, built as airbench builds them: reflect-pad by
    /// one, then crop at the top-left and bottom-right corners.
    #[test]
    fn flip_translate_averages_airbenchs_six_views() {
        let x = Tensor::arange(0.0, 9.0, 1.0).reshape(&[1, 1, 3, 3]);
        let v = x.to_vec();
        let reflect = |i: isize| if (0..3).contains(&i) { i as usize } else { 1 };
        let padded = |p: usize, q: usize| v[reflect(p as isize - 1) * 3 + reflect(q as isize - 1)];
        let crop = |o: usize| (0..9).map(|k| padded(k / 3 + o, k % 3 + o)).collect::<Vec<f32>>();
        let mirror_mean =
            |img: &[f32]| (0..9).map(|k| (img[k] + img[k / 3 * 3 + 2 - k % 3]) / 2.0).collect::<Vec<f32>>();
        let (m, a, b) = (mirror_mean(&v), mirror_mean(&crop(0)), mirror_mean(&crop(2)));
        let want: Vec<f32> = (0..9).map(|k| 0.5 * m[k] + 0.25 * a[k] + 0.25 * b[k]).collect();
        let flatten = crate::nn::Flatten;
        assert_eq!(Tta::FlipTranslate.logits(&flatten, &x).to_vec(), want);
        assert_eq!(Tta::Flip.logits(&flatten, &x).to_vec(), m);
        assert_eq!(Tta::None.logits(&flatten, &x).to_vec(), v);
        assert!("flip-translate ".parse::<Tta>().unwrap_err().to_string().contains("none, flip, flip-translate"));
    }
}
