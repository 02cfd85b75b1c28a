//! The names most programs need, in one import: `use saddle::prelude::*;`.
//!
//! The traits ([`Module`], [`Dataset`], [`Observer`]), the tensor, the layers
//! and their configs, the optimizers and schedules, the training loop and the
//! run API.
//!
//! ```
//! use saddle::prelude::*;
//! // A small CNN on [N, 1, 12, 12] images, one step of Adam on a batch.
//! let mut rng = Rng::new(0);
//! let model = Sequential::new(vec![
//!     Box::new(Conv2d::new(Conv2dConfig::new(1, 4, 3).padding(1), &mut rng)), // [N, 4, 12, 12]
//!     Box::new(ReLU),
//!     Box::new(MaxPool2d::new(2)),                                            // [N, 4, 6, 6]
//!     Box::new(Flatten),
//!     Box::new(Linear::new(4 * 6 * 6, 10, true, &mut rng)),                   // [N, 10]
//! ]);
//! let mut opt = Optimizer::new(model.named_parameters(), AdamConfig::default())?;
//! let x = Tensor::normal(&[8, 1, 12, 12], 0.0, 1.0, &mut rng);
//! let loss = model.forward(&x).cross_entropy(&[0, 1, 2, 3, 4, 5, 6, 7], CrossEntropyOptions::default());
//! opt.zero_grad();
//! loss.backward();
//! opt.step();
//! assert!(model.forward(&x).cross_entropy(&[0, 1, 2, 3, 4, 5, 6, 7], CrossEntropyOptions::default()).item() < loss.item());
//! # Ok::<(), saddle::Error>(())
//! ```

pub use crate::data::{load_idx_dir, Dataset, ImageDataset, TaggedDataset};
pub use crate::diagnose::{diagnose_run, DiagnoseOptions};
pub use crate::nn::{
    lenet5, load_state_dict, save_state_dict, AdaptiveAvgPool2d, AvgPool2d, BatchNorm, BatchNormConfig, CellKind,
    Conv2d, Conv2dConfig, Dropout, Embedding, Flatten, Indices, Linear, MaxPool2d, Module, ReLU, Recurrent,
    RecurrentConfig, Sequential, Tagger, TaggerConfig, GELU,
};
pub use crate::ops::{AvgPool2dOptions, Conv2dOptions, CrossEntropyOptions, MaxPool2dOptions, Reduction};
pub use crate::optim::{
    clip_grad_norm, AdagradConfig, AdamConfig, LrScheduler, Optimizer, RmsPropConfig, Schedule, SgdConfig,
};
pub use crate::train::{
    evaluate, fit, EpochMetrics, FitOptions, Observer, Outcome, Run, RunSpec, StepMetrics, Trainer,
};
pub use crate::{no_grad, Error, Result, Rng, Tensor};
