//! How the process keeps the memory it frees.
//!
//! A training step allocates and frees the same large activation and gradient buffers every
//! time. glibc's defaults hand big freed blocks back to the kernel (blocks over its mmap
//! threshold are unmapped, and the heap is trimmed when its free top grows), so the next step
//! faults every page back in, zeroed by the kernel: about a tenth of a demo-scale step on two
//! cores (`cargo bench --bench train_step`). Raising both thresholds keeps those pages for
//! reuse. Peak resident memory is unchanged, since the first step reaches it anyway; what
//! changes is that it is not returned until the process ends.

/// glibc's largest allowed mmap threshold on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`);
/// blocks larger than this are still mapped and unmapped per allocation.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Keeps freed memory for reuse by later allocations. Call once at start-up; elsewhere than
/// Linux with glibc it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, and glibc serialises it against
    // concurrent allocation; the values are in the ranges glibc documents.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}
