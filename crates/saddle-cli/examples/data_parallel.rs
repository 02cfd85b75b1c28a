//! Data-parallel training through the library: every rank of an MPI job
//! builds the same run, trains on its share of each batch, and the ranks
//! average their gradients; rank 0 writes the run directory and prints.
//!
//! ```sh
//! cargo build --release -p saddle-cli --features mpi --example data_parallel
//! mpirun -n 2 target/release/examples/data_parallel              # into a temporary folder
//! mpirun -n 2 target/release/examples/data_parallel DIR          # into DIR (which must not exist)
//! ```

use saddle::dist::{Collective, DataParallel, Mpi};
use saddle::train::{EpochMetrics, Observer, Outcome, RunSpec, Trainer};
use std::path::PathBuf;
use std::sync::Arc;

/// Prints each epoch (on rank 0).
struct Epochs;

impl Observer for Epochs {
    fn on_epoch(&mut self, m: &EpochMetrics) -> saddle::Result<()> {
        let (loss, accuracy) = m.test.unwrap_or((f32::NAN, f32::NAN));
        let speed = m.examples as f64 / m.train_seconds;
        println!("epoch {}: test loss {loss:.4}, accuracy {:.2}%, {speed:.0} images/s", m.epoch + 1, 100.0 * accuracy);
        Ok(())
    }
}

fn main() {
    let mpi = Arc::new(Mpi::init().expect("MPI starts"));
    let (rank, ranks) = (mpi.rank(), mpi.size());
    let dir = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        // The same folder on every rank: rank 0 alone creates it.
        std::env::temp_dir().join(format!("saddle-data-parallel-{ranks}-ranks"))
    });
    let result = (|| {
        // 2 epochs of LeNet-5; the batch of 64 is the whole batch, 64/R per rank.
        let spec = RunSpec { epochs: 2, ..RunSpec::mnist() };
        let parallel = DataParallel::new(mpi.clone());
        let mut trainer = Trainer::create_distributed(&spec, &dir, &|_, _| {}, parallel)?;
        let mut epochs = Epochs;
        let observers: &mut [&mut dyn Observer] = if rank == 0 { &mut [&mut epochs] } else { &mut [] };
        trainer.train(observers)
    })();
    match result {
        Ok(Outcome::Finished(s)) if rank == 0 => println!(
            "{ranks} ranks: {} accuracy {:.2}% in {:.1} s of training; run in {}",
            s.held_out,
            100.0 * s.held_out_accuracy,
            s.train_seconds,
            dir.display()
        ),
        Ok(_) => {}
        Err(e) => {
            eprintln!("rank {rank}: {e}");
            mpi.abort(1); // the other ranks would wait for this one forever
        }
    }
}
