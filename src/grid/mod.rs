//! Experiment grids: a job spec (`spec`, `overrides`) and its input cases (`inputs`) become a
//! DAG of stages (`plan`), each an array of tasks whose finished outputs the run directory
//! records (`store`), its checkpoints kept by content (`objects`).
//!
//! Nothing here trains or holds a tensor: tasks call `train`, `infer` and `eval` through their
//! public steps, so the same plan runs on one machine or as Slurm arrays.

pub mod backend;
pub mod compute;
pub mod engine;
pub mod exec;
pub mod held;
pub mod history;
pub mod inputs;
pub mod objects;
pub mod overrides;
pub mod patch;
pub mod plan;
pub mod records;
pub mod results;
pub mod seeds;
pub mod spec;
mod stages;
pub mod status;
pub mod store;
pub mod task;
#[cfg(test)]
pub(crate) mod test_plans;
