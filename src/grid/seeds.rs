//! The seeds of a grid, each derived from the job's seed and a name (`crate::seed::derive`), in
//! one place so the planner, the inputs and the summary's provenance agree on them.
//!
//! A task's draws are a function of the run seed, its stage and its index: the stage fixes the
//! member's seed (below) and the epoch, and the index picks the child, whose α draw and batches
//! derive from (member seed, epoch, child) exactly as in one `awsnet train` run. A member has
//! one seed for its whole chain of warm-up, sample and update stages; that is what makes the
//! sharded search give the bytes of the unsharded one.

use super::spec::{JobSpec, Method};
use crate::seed::derive;

/// Both CASN networks' training seed.
pub fn casn(job: u64) -> u64 {
    derive(job, "casn", 0)
}

/// The seed replicate `replicate` of the methods trains from: the job's own for the first, so
/// a job with one replicate plans as it always has; a derived one for the others. Members'
/// seeds derive from it ([`member`]); the CASNs, the case splits and the statistics keep the
/// job's seed, so every replicate is tested on the same cases behind the same CASNs.
pub fn replicate(job: u64, replicate: usize) -> u64 {
    if replicate == 0 {
        job
    } else {
        derive(job, "replicate", replicate as u64)
    }
}

/// Ensemble member `member`'s training seed (member 0 for single-network methods).
pub fn member(job: u64, member: usize) -> u64 {
    derive(job, "asan", member as u64)
}

/// The draw of the test cases out of a `root` directory.
pub fn test_split(job: u64) -> u64 {
    derive(job, "test-split", 0)
}

/// The draw of the validation cases out of the training cases.
pub fn validation_split(job: u64) -> u64 {
    derive(job, "validation-split", 0)
}

/// The statistics' bootstrap resampling.
pub fn bootstrap(job: u64) -> u64 {
    derive(job, "stats", 0)
}

/// How many members `method` trains.
pub fn members_of(job: &JobSpec, method: &Method) -> usize {
    if method.ensemble {
        job.ensemble.members
    } else {
        1
    }
}
