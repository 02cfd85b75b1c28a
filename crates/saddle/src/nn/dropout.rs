//! `Dropout` as a layer: zeroes each element with probability `p` in training
//! and scales the rest by `1/(1 − p)`; the identity in evaluation.
//!
//! Uses: `ops`, `rng`.

use super::Module;
use crate::{Rng, Tensor};
use std::sync::Mutex;

/// `torch.nn.Dropout(p)`, with its own seeded generator.
pub struct Dropout {
    p: f32,
    training: bool,
    rng: Mutex<Rng>,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1)`, its masks drawn from a generator
    /// seeded from `rng`.
    pub fn new(p: f32, rng: &mut Rng) -> Self {
        assert!((0.0..1.0).contains(&p), "Dropout: p must be in [0, 1), got {p}");
        Dropout { p, training: true, rng: Mutex::new(Rng::new(rng.next_u64())) }
    }

    /// The generator of the masks, where it stands now (for a checkpoint).
    pub fn rng(&self) -> Rng {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts the generator of the masks where a checkpoint left it.
    pub fn set_rng(&self, rng: Rng) {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = rng;
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        x.dropout(self.p, self.training, &mut rng)
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }
}
