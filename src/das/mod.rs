//! Deep auto-weighted supervision (DAS): choosing the deep-supervision weights α of an ASAN while
//! it trains. `controller` is the paper's REINFORCE controller over moves of β (α = softmax(β));
//! `weighting` is the config section that picks it or one of the comparators, with their state.
//!
//! This room holds numbers only — policies, β, rewards, records — and never a tensor of the
//! segmentation networks: the training side reports each child's validation Dice, and the
//! functions here decide what the next children train with. That split is what will let the grid
//! runner train the K children as separate array tasks and update the controller in a reducer.

pub mod adam;
pub mod controller;
pub mod weighting;
