//! Everything between files on disk and the arrays models consume: NIfTI reading and writing,
//! MyoPS case discovery, label codes and case-id matching of label files, the phantom generator, slice preprocessing and
//! augmentation. Nothing here knows about models, reports or executors, and nothing here draws.

pub mod augment;
pub mod cases;
pub mod inspect;
pub mod labels;
pub mod matching;
pub mod nifti_read;
pub mod nifti_write;
pub mod phantom;
pub mod preprocess;
