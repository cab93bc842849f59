//! Training: losses, one epoch over a dataset, validation and checkpoints. Nothing here
//! schedules jobs; the grid runner calls these per task.

pub mod auto;
pub mod checkpoint;
pub mod epoch;
pub mod fused_loss;
pub mod learned_alpha;
pub mod loss;
pub mod run;
pub mod samples;
