//! Data-parallel launch: a `saddle` started by `mpirun` joins the MPI job
//! (feature `mpi`), takes a share of the cores, and reports errors with its rank.

use saddle::dist::DataParallel;
#[cfg(feature = "mpi")]
use saddle::dist::{Collective, Mpi};
#[cfg(feature = "mpi")]
use std::sync::Arc;

/// This process's place in an MPI job of several ranks.
pub struct Job {
    /// Data parallelism over the job's ranks.
    pub parallel: DataParallel,
    #[cfg(feature = "mpi")]
    mpi: Arc<Mpi>,
}

/// The ranks `mpirun` started: Open MPI's `OMPI_COMM_WORLD_SIZE`, or the
/// `PMI_SIZE` of other launchers; 1 when not started by `mpirun`.
fn launched_ranks() -> usize {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"].iter().find_map(|v| std::env::var(v).ok()?.parse().ok()).unwrap_or(1)
}

/// Joins the job when `mpirun` started this process with other ranks;
/// `None` when it runs alone. A saddle built without MPI, started as one of
/// several ranks, refuses: each would train the whole run into the same folder.
pub fn join() -> Result<Option<Job>, String> {
    let ranks = launched_ranks();
    #[cfg(feature = "mpi")]
    if ranks > 1 {
        let mpi = Arc::new(Mpi::init().map_err(|e| e.to_string())?);
        let collective: Arc<dyn Collective> = mpi.clone();
        return Ok((mpi.size() > 1).then(|| Job { parallel: DataParallel::new(collective), mpi }));
    }
    if ranks > 1 {
        return Err(format!(
            "mpirun started {ranks} ranks, but this saddle was built without MPI; \
             build it with `cargo build --release -p saddle-cli --features mpi`"
        ));
    }
    Ok(None)
}

impl Job {
    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.parallel.rank()
    }
    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.parallel.size()
    }
    /// Ends every rank of the job with exit code `code`, so that none waits
    /// for this one in a collective.
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        self.mpi.abort(code);
        #[cfg(not(feature = "mpi"))]
        std::process::exit(code)
    }
    /// Worker threads for this rank when `--threads` is not given: the cores
    /// `mpirun` bound it to, or, unbound, the machine's cores shared among
    /// the ranks on this machine (`OMPI_COMM_WORLD_LOCAL_SIZE`).
    pub fn default_threads(&self) -> usize {
        let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: sysconf only reads a system setting.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
        let here = std::env::var("OMPI_COMM_WORLD_LOCAL_SIZE").ok().and_then(|v| v.parse().ok()).unwrap_or(1usize);
        if allowed < online {
            allowed
        } else {
            (online / here.max(1)).max(1)
        }
    }
}
