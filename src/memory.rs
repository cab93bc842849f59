//! How the process keeps the memory it frees.
//!
//! A training step allocates and frees the same large activation and gradient buffers every
//! time. glibc's defaults hand big freed blocks back to the kernel (blocks over its mmap
//! threshold are unmapped, and the heap is trimmed when its free top grows), so the next step
//! faults every page back in, zeroed by the kernel: about a tenth of a demo-scale step on two
//! cores (`cargo bench --bench train_step`). Raising both thresholds keeps those pages for
//! reuse. The bench's peak resident memory stayed the same (177 MiB demo, 1.2 GiB paper scale),
//! since the first step reaches the peak anyway; what changes is that memory is not returned
//! until the process ends.

/// glibc's largest allowed mmap threshold on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`);
/// blocks larger than this are still mapped and unmapped per allocation.
#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Keeps freed memory for reuse by later allocations. Call it first thing in `main`, before any
/// other thread exists: glibc does not make `mallopt` safe against concurrent allocation.
/// Elsewhere than 64-bit Linux with glibc it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    // SAFETY: mallopt only sets allocator parameters, both values are in the ranges glibc
    // accepts on 64-bit targets, and callers run this before starting any other thread.
    unsafe {
        let mmap_set = libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        let trim_set = libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        debug_assert!(mmap_set == 1 && trim_set == 1, "mallopt refused a value");
    }
}
