//! The CASNs as the ASANs' trainer sees them: a config's `casn_rois` has an ASAN train on the
//! ROIs and LV masks that trained CASNs find in its training and validation slices, cut exactly
//! as inference cuts a test slice ([`super::pipeline::locate`]), instead of the ground truth's.

use burn::tensor::backend::{AutodiffBackend, Backend};
use ndarray::Array2;

use super::pipeline::{deployed_run, load_stage, locate, Stage};
use crate::data::cases::{Case, Sequence};
use crate::data::preprocess::{normalize_slice, slices};
use crate::error::{Error, Result};
use crate::train::config::CasnRois;
use crate::train::deploy::Deploy;
use crate::train::samples::{LocateLv, Located, Network, SampleGeometry};

/// Two trained CASNs that find the LV in a case's slices.
pub struct CasnLocator<B: Backend> {
    coarse: Stage<B>,
    fine: Stage<B>,
    largest_component: bool,
    device: B::Device,
}

impl<B: Backend> CasnLocator<B> {
    /// Load the CASN runs `rois` names for an ASAN cut with `geometry`: both must share its
    /// centre crop, and the fine CASN its ROI margin, as they would in one pipeline.
    pub fn load<A>(rois: &CasnRois, geometry: &SampleGeometry, device: &A::Device) -> Result<Self>
    where
        A: AutodiffBackend<InnerBackend = B, Device = B::Device>,
    {
        let coarse = deployed_run(&rois.coarse, Deploy::Default)?;
        let fine = deployed_run(&rois.fine, Deploy::Default)?;
        for (d, problem) in [
            (
                &coarse,
                (coarse.config.geometry.crop != geometry.crop).then(|| {
                    format!(
                        "geometry.crop {:?} differs from the ASAN's {:?}; casn_rois must share \
                         the ASAN's centre crop",
                        coarse.config.geometry.crop, geometry.crop
                    )
                }),
            ),
            (
                &fine,
                (fine.config.geometry.margin != geometry.margin).then(|| {
                    format!(
                        "geometry.margin {} differs from the ASAN's {}; the fine CASN and the \
                         ASAN must share the ROI margin",
                        fine.config.geometry.margin, geometry.margin
                    )
                }),
            ),
        ] {
            if let Some(problem) = problem {
                return Err(Error::input(&d.source, problem));
            }
        }
        Ok(CasnLocator {
            coarse: load_stage::<A>(&coarse, Network::CasnCoarse, device)?,
            fine: load_stage::<A>(&fine, Network::CasnFine, device)?,
            largest_component: rois.largest_component,
            device: device.clone(),
        })
    }
}

impl<B: Backend> LocateLv for CasnLocator<B> {
    fn locate(&self, case: &Case) -> Result<Vec<Option<Located>>> {
        let sequences: Vec<Vec<Array2<f32>>> = Sequence::ALL
            .iter()
            .map(|&s| slices(case.image(s)))
            .collect();
        Ok((0..sequences[0].len())
            .map(|z| {
                let norm: Vec<Array2<f32>> = sequences
                    .iter()
                    .map(|s| normalize_slice(s[z].view()))
                    .collect();
                locate(
                    &self.coarse,
                    &self.fine,
                    &norm,
                    self.largest_component,
                    &self.device,
                )
            })
            .collect())
    }

    fn who(&self) -> &'static str {
        "the CASNs of casn_rois find"
    }
}
