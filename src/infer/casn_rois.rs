//! The CASNs as the ASANs' trainer sees them: a config's `casn_rois` has an ASAN train on the
//! ROIs and LV masks that trained CASNs find in its training and validation slices, cut exactly
//! as inference cuts a test slice ([`super::pipeline::locate`]), instead of the ground truth's.

use std::path::Path;

use burn::tensor::backend::{AutodiffBackend, Backend};

use super::pipeline::{deployed_run, load_stage, locate, zscored_slices, Deployed, Stage};
use crate::data::cases::Case;
use crate::error::{Error, Result};
use crate::train::config::CasnRois;
use crate::train::deploy::Deploy;
use crate::train::samples::{LocateLv, Located, Network, SampleGeometry};

/// Trained CASNs that find the LV in a case's slices: a case's fold's pair, if it has one, and
/// the main pair otherwise.
pub struct CasnLocator<B: Backend> {
    main: CasnPair<B>,
    folds: Vec<(Vec<String>, CasnPair<B>)>,
    largest_component: bool,
    device: B::Device,
}

struct CasnPair<B: Backend> {
    coarse: Stage<B>,
    fine: Stage<B>,
}

impl<B: Backend> CasnLocator<B> {
    /// Load the CASN runs `rois` names for an ASAN cut with `geometry`: each coarse CASN must
    /// share its centre crop, and each fine CASN its ROI margin, as they would in one pipeline.
    pub fn load<A>(rois: &CasnRois, geometry: &SampleGeometry, device: &A::Device) -> Result<Self>
    where
        A: AutodiffBackend<InnerBackend = B, Device = B::Device>,
    {
        let pair = |coarse: &Path, fine: &Path| -> Result<CasnPair<B>> {
            let coarse = deployed_run(coarse, Deploy::Default)?;
            let fine = deployed_run(fine, Deploy::Default)?;
            check_geometry(&coarse, &fine, geometry)?;
            Ok(CasnPair {
                coarse: load_stage::<A>(&coarse, Network::CasnCoarse, device)?,
                fine: load_stage::<A>(&fine, Network::CasnFine, device)?,
            })
        };
        Ok(CasnLocator {
            main: pair(&rois.coarse, &rois.fine)?,
            folds: rois
                .folds
                .iter()
                .map(|f| Ok((f.cases.clone(), pair(&f.coarse, &f.fine)?)))
                .collect::<Result<_>>()?,
            largest_component: rois.largest_component,
            device: device.clone(),
        })
    }
}

/// [`CasnLocator::load`] as training takes it (`train::samples::LoadCasns`).
pub fn casn_locator<A: AutodiffBackend>(
    rois: &CasnRois,
    geometry: &SampleGeometry,
    device: &A::Device,
) -> Result<Box<dyn LocateLv>> {
    Ok(Box::new(CasnLocator::<A::InnerBackend>::load::<A>(
        rois, geometry, device,
    )?))
}

/// Both CASNs cut the way the ASAN was: the same centre crop, the same ROI margin.
fn check_geometry(coarse: &Deployed, fine: &Deployed, geometry: &SampleGeometry) -> Result<()> {
    let (crop, margin) = (coarse.config.geometry.crop, fine.config.geometry.margin);
    if crop != geometry.crop {
        return Err(Error::input(
            &coarse.source,
            format!(
                "geometry.crop {crop:?} differs from the ASAN's {:?}; casn_rois must share the \
                 ASAN's centre crop",
                geometry.crop
            ),
        ));
    }
    if margin != geometry.margin {
        return Err(Error::input(
            &fine.source,
            format!(
                "geometry.margin {margin} differs from the ASAN's {}; the fine CASN and the \
                 ASAN must share the ROI margin",
                geometry.margin
            ),
        ));
    }
    Ok(())
}

impl<B: Backend> LocateLv for CasnLocator<B> {
    fn locate(&self, case: &Case) -> Result<Vec<Option<Located>>> {
        let pair = self
            .folds
            .iter()
            .find(|(cases, _)| cases.contains(&case.id))
            .map_or(&self.main, |(_, pair)| pair);
        Ok(zscored_slices(case)
            .iter()
            .map(|norm| {
                locate(
                    &pair.coarse,
                    &pair.fine,
                    norm,
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
