//! How the worker threads of rayon's pool wait between parallel loops.
//!
//! A training step runs dozens of parallel loops with serial code between
//! them (the autograd engine, small ops, a batch's assembly). A rayon worker
//! that finds no work yields a few times and then sleeps, and waking it
//! takes longer than many of the loops it is woken for: on 2 cores of a
//! Zen 5 EPYC (a KVM guest), a `join` of two halves of 20 µs took 50 µs
//! after 50 µs of serial work, the calling thread running both halves
//! before the other worker woke, and 21 µs while the other worker polled.
//! [`keep_workers_polling`] has the pool's other workers poll for work
//! instead, for [`POLL_FOR`] after the last job they ran, as the threads of
//! OpenMP (under PyTorch's CPU kernels) spin a while before they sleep.
//!
//! The backward pass ([`Tensor::backward_with`](crate::Tensor::backward_with)),
//! each step of [`train::fit`](crate::train::fit) and each batch of
//! [`train::evaluate`](crate::train::evaluate) call it, so the workers poll
//! while a training loop runs, the library's or a hand-written one, and
//! sleep again within [`POLL_FOR`] once it stops. A polling worker gives its
//! core to any other thread that wants it (`sched_yield` between polls).
//! Which worker runs which part of a loop never changes the results
//! (`kernels`), so polling changes only the time.
//!
//! Uses: nothing.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long a polling worker goes on polling after the last job it ran.
pub const POLL_FOR: Duration = Duration::from_millis(2);

thread_local! {
    /// Whether this thread is polling: a second request is then a no-op.
    static POLLING: Cell<bool> = const { Cell::new(false) };
}

/// Has every worker of the current pool (rayon's global pool outside one),
/// but the calling thread, poll for work until [`POLL_FOR`] has passed
/// without any; a worker already polling goes on as it was. Sleeping
/// workers are woken at once, so the next parallel loop finds them ready.
///
/// ```
/// // A step of a loop of your own (the backward pass calls it too).
/// saddle::threads::keep_workers_polling();
/// let y = saddle::Tensor::ones(&[1 << 16]).mul_scalar(2.0);
/// assert_eq!(y.sum_all().item(), 131_072.0);
/// ```
pub fn keep_workers_polling() {
    let caller = rayon::current_thread_index();
    rayon::spawn_broadcast(move |worker| {
        if Some(worker.index()) == caller || POLLING.get() {
            return;
        }
        POLLING.set(true);
        let mut last = Instant::now();
        loop {
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => last = Instant::now(),
                _ if last.elapsed() >= POLL_FOR => break,
                _ => std::thread::yield_now(),
            }
        }
        POLLING.set(false);
    });
}

/// Whether this thread is polling for work (for tests).
#[cfg(test)]
pub(crate) fn polling() -> bool {
    POLLING.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_workers_poll_and_run_the_jobs_that_follow() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        pool.install(|| {
            let me = rayon::current_thread_index().unwrap();
            let expect: Vec<bool> = (0..3).map(|i| i != me).collect();
            // A job that reaches a polling worker runs inside its polling loop.
            // (A few tries: a worker descheduled for POLL_FOR stops polling.)
            let polled = (0..10).any(|_| {
                keep_workers_polling();
                rayon::broadcast(|_| POLLING.get()) == expect
            });
            assert!(polled, "every worker but the caller polls");
        });
    }

    #[test]
    fn workers_stop_polling_once_there_is_no_work() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        pool.install(keep_workers_polling);
        std::thread::sleep(POLL_FOR * 10);
        // A polling worker would run this inside its polling loop.
        assert_eq!(pool.broadcast(|_| POLLING.get()), [false; 3], "no worker is still polling");
    }
}
