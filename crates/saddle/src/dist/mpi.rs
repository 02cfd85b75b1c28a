//! [`Collective`] over Open MPI (or any MPI), through the `mpi` crate
//! (rsmpi). The only file of saddle that names MPI.

use super::Collective;
use crate::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;
use std::sync::Mutex;

/// The processes of an MPI job (`MPI_COMM_WORLD`), joined with
/// `MPI_THREAD_SERIALIZED`: saddle calls MPI from one thread at a time (the
/// one that trains, a worker of the thread pool), never concurrently.
/// Dropping it ends MPI (`MPI_Finalize`), which waits for every rank.
pub struct Mpi {
    world: Mutex<World>,
    rank: usize,
    size: usize,
    // Declared last: MPI ends after the communicator is gone.
    _universe: Universe,
}

/// The communicator, and the send buffers of the sums, kept between calls
/// (MPI has no portable in-place flag in the `mpi` crate; a fresh buffer of
/// 64 MiB would cost its page faults at every call).
struct World {
    comm: SimpleCommunicator,
    send_f32: Vec<f32>,
    send_f64: Vec<f64>,
}

// SAFETY: MPI was initialized with MPI_THREAD_SERIALIZED and every call goes
// through the mutex, so no two threads are ever inside MPI at once.
unsafe impl Send for Mpi {}
// SAFETY: as above.
unsafe impl Sync for Mpi {}

impl Mpi {
    /// Joins the MPI job: `MPI_Init_thread` with `MPI_THREAD_SERIALIZED`.
    /// Once per process; a second call is an error.
    pub fn init() -> Result<Mpi> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| Error::config("mpi", "MPI is already initialized in this process"))?;
        if threading < Threading::Serialized {
            return Err(Error::config(
                "mpi",
                format!("the MPI library offers thread level {threading:?}; saddle needs Serialized"),
            ));
        }
        let comm = universe.world();
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        let world = World { comm, send_f32: Vec::new(), send_f64: Vec::new() };
        Ok(Mpi { world: Mutex::new(world), rank, size, _universe: universe })
    }

    /// Ends every rank of the job at once with exit code `code`
    /// (`MPI_Abort`): what a rank does on an error, so that the others do
    /// not wait for it forever in a collective.
    pub fn abort(&self, code: i32) -> ! {
        self.world().comm.abort(code)
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn sum_f32(&self, values: &mut [f32]) {
        let w = &mut *self.world();
        sum_into(&w.comm, &mut w.send_f32, values);
    }
    fn sum_f64(&self, values: &mut [f64]) {
        let w = &mut *self.world();
        sum_into(&w.comm, &mut w.send_f64, values);
    }
    fn broadcast_f32(&self, values: &mut [f32]) {
        self.world().comm.process_at_rank(0).broadcast_into(values);
    }
    fn gather_u64(&self, values: &[u64]) -> Vec<u64> {
        let world = &self.world().comm;
        let mut counts = vec![0i32; self.size];
        let mine = i32::try_from(values.len()).expect("fewer than 2³¹ values per rank");
        world.all_gather_into(&mine, &mut counts[..]);
        let displs: Vec<i32> = counts.iter().scan(0, |at, &c| Some(std::mem::replace(at, *at + c))).collect();
        let mut all = vec![0u64; counts.iter().map(|&c| c as usize).sum()];
        let mut parts = PartitionMut::new(&mut all[..], counts, displs);
        world.all_gather_varcount_into(values, &mut parts);
        all
    }
}

/// `values ← Σ_r values_r` (`MPI_Allreduce`), sent from `send`, which keeps its memory between calls.
fn sum_into<T: Equivalence + Copy>(comm: &SimpleCommunicator, send: &mut Vec<T>, values: &mut [T]) {
    send.clear();
    send.extend_from_slice(values);
    comm.all_reduce_into(&send[..], values, SystemOperation::sum());
}
