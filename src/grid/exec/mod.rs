//! Executors: what runs a plan's tasks. Each runs the same `awsnet task RUN --stage S --index I`
//! per task, so a task's outputs do not depend on where it ran.

pub mod local;
pub mod lock;
pub mod slurm;
