//! Inference: the whole AWSnet pipeline on a case, from its three sequences to a MyoPS-coded
//! label volume on the case's own grid.
//!
//! Per slice (every sequence z-scored per slice first):
//! 1. CASN coarse on the centre crop → LV-region mask;
//! 2. the mask's bounding box plus the fine net's margin, squared → ROI (a slice where the coarse
//!    net finds no LV is background throughout); optionally the box of the mask's largest
//!    connected component only, so a stray blob cannot stretch it (`--largest-component`);
//! 3. CASN fine on the ROI → refined LV-region mask;
//! 4. DE and T2 of the ROI multiplied by that mask (Eq. 2) → ASAN-S and ASAN-P;
//! 5. merge, inside the LV region: scar (2221) where ASAN-S says scar; edema (1220) where ASAN-P
//!    says pathology and ASAN-S does not say scar; myocardium (200) where either says
//!    myocardium; the rest of the LV region is LV blood pool (500);
//! 6. optionally, small components are removed per slice: scar under 60 pixels becomes edema
//!    where ASAN-P saw pathology and myocardium otherwise; edema under 200 pixels becomes
//!    myocardium (8-connected components);
//! 7. the ROI is pasted back and un-cropped; outside it everything is background.
//!
//! The model directory holds the four training runs of `awsnet train`, named by network:
//! `casn_coarse/`, `casn_fine/`, `scar/`, `scar_edema/`; each run's best checkpoint and its
//! `config.json` (for the geometry) are used.
//!
//! Steps 1–3 are also what an ASAN trains on when its config asks for `casn_rois`
//! ([`casn_rois`]) rather than the ground truth's ROIs.
//!
//! [`vote`] combines the label volumes of several models (or tools) by per-voxel majority vote.

pub mod casn_rois;
pub mod components;
pub mod pipeline;
pub mod vote;
