//! # saddle
//!
//! Deep-learning training in Rust: `f32` tensors with reverse-mode automatic
//! differentiation, the ops and layers of convolutional and recurrent networks
//! verified against PyTorch, optimizers, a training loop that reads aloud, and
//! a diagnosis of stuck training ([`diagnose`]).
//!
//! ```
//! use saddle::{Rng, Tensor};
//! // One step of gradient descent on L(w) = mean((x·wᵀ − y)²).
//! let mut rng = Rng::new(0);
//! let x = Tensor::normal(&[8, 3], 0.0, 1.0, &mut rng);
//! let y = Tensor::zeros(&[8, 1]);
//! let w = Tensor::normal(&[1, 3], 0.0, 1.0, &mut rng).requires_grad();
//! let loss = x.linear(&w, None).mse_loss(&y, saddle::ops::Reduction::Mean);
//! loss.backward();
//! let g = w.grad().unwrap().to_vec();
//! w.data_mut().iter_mut().zip(&g).for_each(|(p, g)| *p -= 0.1 * g);
//! let after = x.linear(&w, None).mse_loss(&y, saddle::ops::Reduction::Mean);
//! assert!(after.item() < loss.item());
//! ```
//!
//! `use saddle::prelude::*` brings the traits and the types most programs
//! need ([`prelude`]); layers are built from their sizes or a config
//! (`Conv2d::new(Conv2dConfig::new(3, 16, 3).padding(1), &mut rng)`).
//!
//! Kernels run in parallel on rayon's global thread pool, and their results
//! do not depend on the number of threads. [`train::fit`],
//! [`train::evaluate`] and [`diagnose::diagnose_run`] (and so the whole-run
//! API below) run on a worker of that pool, wherever they are called from, so
//! that each parallel loop starts from a thread that takes its share. A
//! training loop of your own, called from `main`, leaves the main thread
//! waiting beside the workers at every step (one thread more than there are
//! cores; about 7% slower for LeNet-5 on 2 cores): run it on a worker.
//! While a training or evaluation loop runs, the pool's other workers poll
//! for work between its parallel loops instead of going to sleep
//! ([`threads`]); the backward pass asks them to.
//!
//! ```
//! let loss = rayon::scope(|_| {
//!     // your own loop: forward, backward, step
//!     saddle::Tensor::ones(&[4]).sum_all().item()
//! });
//! assert_eq!(loss, 4.0);
//! ```
//!
//! A whole run, as `saddle train mnist` does it, from a [`train::RunSpec`]:
//!
//! ```no_run
//! use saddle::train::{Outcome, Run, RunSpec, Trainer};
//! let spec = RunSpec { epochs: 2, ..RunSpec::mnist() };          // LeNet-5, Adam, one-cycle
//! let mut trainer = Trainer::create(&spec, "runs/lenet".as_ref())?; // writes config.json
//! trainer.train(&mut [])?;                                          // checkpoints every epoch
//! let mut run = Run::open("runs/lenet".as_ref())?;                  // the trained model
//! let findings = saddle::diagnose::diagnose_run(&mut run, &Default::default())?;
//! println!("{}", findings.end.verdict);
//! # Ok::<(), saddle::Error>(())
//! ```
//!
//! Layout (every arrow points down; see ARCHITECTURE.md):
//! `diagnose → train → nn → ops → tensor → kernels`, `train → optim → tensor`,
//! `train → data → tensor`, `train → dist` (data parallelism over ranks; Open
//! MPI behind the cargo feature `mpi`); `error`, `rng`, `io`, `memory` and
//! `threads` are leaves usable by all.

#![warn(missing_docs)]

pub mod data;
pub mod diagnose;
pub mod dist;
pub mod error;
pub mod io;
pub mod kernels;
pub mod memory;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod prelude;
pub mod rng;
pub mod tensor;
pub mod threads;
pub mod train;

pub use error::{Error, Result};
pub use rng::Rng;
pub use tensor::{is_grad_enabled, no_grad, Tensor};

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
