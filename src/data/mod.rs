//! Everything between files on disk and the arrays models consume: NIfTI reading and writing,
//! MyoPS case discovery and label codes, the phantom generator, slice preprocessing and
//! augmentation. Nothing here knows about models or executors.

pub mod augment;
pub mod cases;
pub mod inspect;
pub mod labels;
pub mod nifti_read;
pub mod nifti_write;
pub mod phantom;
pub mod preprocess;
