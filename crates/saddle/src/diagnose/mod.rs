//! Why training is stuck: measurements during training, curvature at a
//! point, and the verdict that turns them into a sentence.
//!
//! - [`Monitor`] (from [`crate::train`]), an [`Observer`](crate::train::Observer) that `fit` calls:
//!   every few steps the loss, the gradient norm (global and per layer), the
//!   size of the update relative to the weights, the cosine between
//!   successive updates, and how often clipping fired.
//! - [`Objective`], [`curvature`]: Hessian-vector products by central
//!   differences of exact gradients and the extreme Hessian eigenvalues by
//!   Lanczos; [`hessian_trace`] (Hutchinson) and [`spectral_density`]
//!   (stochastic Lanczos quadrature); [`escape`], a step along the direction
//!   of negative curvature.
//! - [`time_flow`]: `‖∂L/∂h_t‖` at every step of a recurrence.
//! - [`plateaus`] and [`diagnose`]: where the loss stopped falling, and the
//!   [`Verdict`] for each plateau with the numbers it rests on;
//!   [`final_weights`]: saddle, minimum or still descending at the end.
//! - [`interpolate`] and [`slice_2d`]: the loss along a line between two
//!   points and on a plane of filter-normalized random directions.
//! - [`diagnose_run`]: all of it on a finished run, in one call.
//! - [`Watch`]: the verdicts while training, as warnings (and a stop, if asked).
//! - [`labelled_runs`]: runs whose right verdict is known by construction,
//!   the benchmark of all of the above.
//!
//! Uses: `train`, `nn`, `tensor`, `error`.

mod curvature;
mod flow;
mod labelled;
mod landscape;
mod run;
mod verdict;
mod watch;

pub use crate::train::{layer_of, read_records, write_records, Monitor, Record};
pub use curvature::{
    curvature, dataset_gradient, density_on, escape, hessian_trace, lanczos, mean_loss, spectral_density,
    symmetric_eigen, Curvature, Escape, Lanczos, Objective,
};
pub use flow::{adding_batch, cue_batch, cue_corpus, time_flow};
pub use labelled::{labelled_runs, Expected, LabelledRun};
pub use landscape::{filter_normalized_direction, interpolate, slice_2d};
pub use run::{diagnose_run, DiagnoseOptions, Diagnosis};
pub use verdict::{diagnose, final_weights, plateaus, Evidence, Finding, Verdict};
pub use watch::Watch;
