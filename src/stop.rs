//! Stopping at a safe point: a request to stop (SIGTERM from a scheduler ending a job, SIGUSR2
//! from Slurm's `--signal` before a time limit or preemption) sets a flag; long work checks it
//! where its state is saved — between epochs — and returns [`Error::Stopped`], which exits with
//! its own code so an executor knows to run the task again, from that save.
//!
//! The flag is a seam: tests and in-process callers pass [`Never`] or their own [`Stop`].

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether stopping has been asked for.
pub trait Stop: Sync {
    fn requested(&self) -> bool;
}

/// Never stops.
pub struct Never;

impl Stop for Never {
    fn requested(&self) -> bool {
        false
    }
}

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // An atomic store is async-signal-safe; everything else happens at the safe point.
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Stops when the process has received SIGTERM or SIGUSR2 since [`OnSignals::install`].
pub struct OnSignals(());

impl OnSignals {
    /// Route SIGTERM and SIGUSR2 to the flag (for the rest of the process's life).
    pub fn install() -> OnSignals {
        for signal in [libc::SIGTERM, libc::SIGUSR2] {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe {
                libc::signal(signal, on_signal as *const () as libc::sighandler_t);
            }
        }
        OnSignals(())
    }
}

impl Stop for OnSignals {
    fn requested(&self) -> bool {
        REQUESTED.load(Ordering::SeqCst)
    }
}
