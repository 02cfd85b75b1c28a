//! How a training process asks glibc's malloc and Linux for memory:
//! training frees and allocates the same large tensors at every step, and
//! the defaults suit that poorly. [`keep_freed_memory`] has freed blocks
//! kept for the next step's tensors; [`train::fit`](crate::train::fit)
//! calls it, so every run gets it, and a program with a training loop of
//! its own calls it first thing. [`HugePages`] is an allocator a program
//! installs (`#[global_allocator]`) to have large blocks backed by huge
//! pages. The `saddle` binary does both.
//!
//! Uses: nothing.

use std::alloc::{GlobalAlloc, Layout, System};

/// Has glibc's malloc keep freed memory for the next blocks: every block
/// from its heap (`M_MMAP_MAX` 0), the heap never trimmed
/// (`M_TRIM_THRESHOLD` at its largest), one heap for all threads
/// (`M_ARENA_MAX` 1).
///
/// By default glibc's malloc gives blocks over 128 KiB their own pages and returns them
/// on free, and returns free memory at the top of its heap beyond 128 KiB,
/// so each training step faults its large tensors in again, zeroed: a third
/// of an LSTM step here, a quarter of a ResNet-20 step (batch 512: its
/// 16-channel activations are 32 MiB each). Every block comes from the heap
/// instead, and the heap is never trimmed: freed blocks serve the next
/// step's tensors of the same sizes, and the peak stays what the tensors
/// need: CIFAR-10 training's first epoch peaked at 904 MiB against 898 MiB
/// when blocks of 32 MiB and more had their own pages and 64 MiB of free
/// heap was kept, and the benchmarks' peaks moved by under 1 MiB, while
/// ResNet-20 trained at 378 images/s instead of 255 (medians of five
/// interleaved rounds on a Xeon; the LSTM gained 1.7× from the first
/// step, keeping blocks up to 32 MiB). Keeping 64 MiB of free heap gave
/// back much of the gain: a step frees hundreds of MiB at once.
///
/// One heap (arena) for all threads: with one per worker thread, each kept
/// its own freed blocks, and the colour-image network's benchmark peaked at
/// 1309 MiB instead of 995 MiB, with no measurable difference in speed
/// (saddle allocates tensors, not millions of small objects).
///
/// Best called first thing in `main`: the one-arena setting applies to
/// threads that have not yet allocated. Elsewhere than glibc on Linux it
/// does nothing.
///
/// ```
/// saddle::memory::keep_freed_memory(); // then build the model and train
/// ```
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, under malloc's own
    // lock; blocks already allocated keep working under the new settings.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// The system allocator, asking Linux to back blocks of 4 MiB and more with
/// transparent huge pages (`madvise(MADV_HUGEPAGE)`, which this machine's
/// kernel honours only where asked). A loop that streams a large tensor then
/// walks one 2 MiB page where it walked 512 of 4 KiB: an optimizer step over
/// 10M parameters, which reads and writes every buffer once, gets faster (the
/// README's benchmarks give the measurement). glibc's `glibc.malloc.hugetlb=1` tunable does the same for
/// every block, but only when set in the environment before the program starts.
///
/// ```
/// #[global_allocator]
/// static ALLOCATOR: saddle::memory::HugePages = saddle::memory::HugePages;
///
/// let big = vec![1.0f32; 4 << 20]; // 16 MiB, advised
/// assert_eq!(big.iter().sum::<f32>(), (4 << 20) as f32);
/// ```
pub struct HugePages;

/// Blocks this large get the advice: at least one whole huge page inside.
const ADVISE_FROM: usize = 4 << 20;

fn advise(p: *mut u8, size: usize) -> *mut u8 {
    #[cfg(target_os = "linux")]
    if !p.is_null() && size >= ADVISE_FROM {
        const HUGE: usize = 2 << 20;
        let (start, end) = ((p as usize).next_multiple_of(HUGE), (p as usize + size) / HUGE * HUGE);
        // SAFETY: the range lies inside the block just allocated; the advice
        // changes how its pages are backed, never their contents.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
    p
}

// SAFETY: every call goes to `System`, which upholds GlobalAlloc's contract;
// `advise` only adds a hint about pages of the block it returns.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        advise(unsafe { System.alloc(layout) }, layout.size())
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        advise(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        advise(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }
}
