//! Evaluation: how good a segmentation is, and whether one method beats another.
//!
//! - [`metrics`]: Dice, Jaccard, Hausdorff (HD, HD95) and surface distances (ASSD) of one mask
//!   pair, in millimetres, with the empty-mask policy; [`surface`] and [`edt`] under it.
//! - [`evaluate`], [`summary`]: `awsnet eval` over two directories of MyoPS label volumes (paired
//!   by case id, `data::matching`), and the JSON and CSV it writes.
//! - [`ensemble`]: an ensemble's vote against its members, evaluated alone.
//! - [`replicates`]: a method trained from several seeds, its per-case metrics averaged.
//! - [`stats`]: paired tests between two evaluations and Holm's correction (`awsnet stats`).
//!
//! Nothing here depends on burn: evaluating predictions needs no model code.

pub mod edt;
pub mod ensemble;
pub mod evaluate;
pub mod metrics;
pub mod replicates;
pub mod stats;
pub mod summary;
pub mod surface;
