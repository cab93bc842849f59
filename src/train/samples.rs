//! Training samples of the four networks, built from labelled slices.
//!
//! - CASN coarse (§3.1): C0, DE and T2 of the centre-cropped slice, resized to the input; target
//!   the LV region (blood pool and the whole myocardium). Every slice counts, with or without
//!   the LV, since the coarse net must also learn where there is none.
//! - CASN fine: the same three sequences on the ROI around the LV region; same target.
//! - ASAN-S / ASAN-P (§3.2): the masked ROI of DE and T2 (Eq. 2) and the class map of the net.
//!
//! By default training ROIs come from the ground truth (§3.1 allows it; test ROIs must come from
//! CASN's prediction, which is inference's job): the LV region's bounding box in the
//! centre-cropped slice, widened by a margin and squared, resized to the network input. A config
//! with `casn_rois` has trained CASNs find them instead, as at test time ([`LocateLv`]). Each
//! sequence is z-scored per slice before cropping, and multiplied by the LV-region mask
//! afterwards ([`Located::candidate`]), so the network sees only the candidate structure.

use ndarray::{Array2, ArrayView2};

use super::config::TrainConfig;
use crate::data::cases::{Case, Sequence};
use crate::data::labels::{Label, Target};
use crate::data::preprocess::{
    normalize_slice, resize_nearest, roi_box, slices, CenterWindow, RoiBox, RoiGeometry,
};
use crate::error::{Error, Result};

/// Which ASAN a sample is for (§3.2: two independent networks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsanNet {
    /// Background, myocardium, scar.
    Scar,
    /// Background, myocardium, scar + edema.
    ScarEdema,
}

impl AsanNet {
    /// The class of a MyoPS code for this net: 0 background, 1 myocardium, 2 pathology. Blood
    /// pools are background here: the net works inside the LV-region mask.
    pub fn class_of(self, code: u16) -> u8 {
        let pathology = match self {
            AsanNet::Scar => Target::Scar,
            AsanNet::ScarEdema => Target::ScarEdema,
        };
        if pathology.contains(code) {
            2
        } else if Target::Myo.contains(code) {
            1
        } else {
            0
        }
    }

    /// The evaluation target its pathology class stands for.
    pub fn target(self) -> Target {
        match self {
            AsanNet::Scar => Target::Scar,
            AsanNet::ScarEdema => Target::ScarEdema,
        }
    }
}

/// The network a sample is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    CasnCoarse,
    CasnFine,
    /// ASAN-S.
    Scar,
    /// ASAN-P.
    ScarEdema,
}

impl Network {
    pub fn asan(self) -> Option<AsanNet> {
        match self {
            Network::Scar => Some(AsanNet::Scar),
            Network::ScarEdema => Some(AsanNet::ScarEdema),
            Network::CasnCoarse | Network::CasnFine => None,
        }
    }

    /// The class whose Dice validation reports: the pathology for ASAN, the LV region for
    /// CASN.
    pub fn scored_class(self) -> u8 {
        match self.asan() {
            Some(_) => 2,
            None => 1,
        }
    }

    /// The samples of `case` for this network; an ASAN's inputs are `sequences` (CASN reads
    /// all three).
    pub fn samples(
        self,
        case: &Case,
        geometry: &SampleGeometry,
        sequences: &[Sequence],
    ) -> Vec<Sample> {
        match self {
            Network::CasnCoarse => casn_samples(case, false, geometry),
            Network::CasnFine => casn_samples(case, true, geometry),
            Network::Scar => asan_samples(case, AsanNet::Scar, geometry, sequences),
            Network::ScarEdema => asan_samples(case, AsanNet::ScarEdema, geometry, sequences),
        }
    }
}

/// One training or validation example.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Case id and slice index, for logs.
    pub case: String,
    pub slice: usize,
    /// DE and T2, masked, `input` sized.
    pub channels: Vec<Array2<f32>>,
    /// Classes 0..3, `input` sized.
    pub classes: Array2<u8>,
}

/// How slices become samples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleGeometry {
    /// Centre crop of the slice before the ROI is cut (SPEC: 384×384 at MyoPS resolution).
    pub crop: [usize; 2],
    /// Pixels added around the LV region's box.
    pub margin: usize,
    /// Network input, a multiple of 16 (the paper: 128×128).
    pub input: [usize; 2],
}

/// Where a slice's LV region is: the ROI cut from the centre crop and the region's mask over
/// that ROI. Training takes it from the ground truth by default; at test time the CASNs find it
/// (`infer::pipeline::locate`), and training can take it from them too ([`LocateLv`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub window: CenterWindow,
    pub roi: RoiBox,
    /// 1 on the LV region, over the ROI at any resolution: resized (nearest) to each network's
    /// input.
    pub mask: Array2<u8>,
}

impl Located {
    /// The ground truth's: the box of the LV region in the centre crop, widened by the margin
    /// and squared, with the region's mask at the network input; `None` when the slice does not
    /// show it.
    pub fn from_labels(labels: ArrayView2<u16>, geometry: &SampleGeometry) -> Option<Located> {
        let geo = roi_geometry(labels, geometry)?;
        Some(Located {
            window: geo.window,
            roi: geo.roi,
            mask: geo
                .labels(labels)
                .mapv(|c| u8::from(Target::LvRegion.contains(c))),
        })
    }

    /// The crop → ROI → `input` geometry.
    pub fn geometry(&self, input: [usize; 2]) -> RoiGeometry {
        RoiGeometry {
            window: self.window,
            roi: self.roi,
            input,
        }
    }

    /// The candidate structure of Eq. 2, A = I_roi ⊗ mask: each z-scored slice of `norm` cut to
    /// the ROI at `input` and zeroed outside the LV region. Training and inference both build
    /// the ASANs' inputs here.
    pub fn candidate(&self, norm: &[ArrayView2<f32>], input: [usize; 2]) -> Vec<Array2<f32>> {
        let geo = self.geometry(input);
        let mask = resize_nearest(self.mask.view(), input);
        norm.iter()
            .map(|slice| {
                let mut roi = geo.image(*slice);
                roi.zip_mut_with(&mask, |v, &m| {
                    if m == 0 {
                        *v = 0.0;
                    }
                });
                roi
            })
            .collect()
    }
}

/// Finds the LV in each slice of a case for the ASANs' samples.
pub trait LocateLv {
    /// One entry per slice; `None` where there is no LV to segment.
    fn locate(&self, case: &Case) -> Result<Vec<Option<Located>>>;

    /// Who finds it, for errors: "the ground truth shows", "the CASNs of casn_rois find".
    fn who(&self) -> &'static str;
}

/// Loads the trained CASNs a config's `casn_rois` names as a [`LocateLv`]. Loading them is
/// inference's work (`infer::casn_rois::casn_locator`), so whoever calls training passes it in
/// and `train` never imports `infer`.
/// `D` is the backend's device.
pub type LoadCasns<D> =
    fn(&crate::train::config::CasnRois, &SampleGeometry, &D) -> Result<Box<dyn LocateLv>>;

/// The ground truth's LV region (§3.1 allows training on it), slices without labels skipped.
pub struct GroundTruthLv<'a>(pub &'a SampleGeometry);

impl GroundTruthLv<'_> {
    /// [`LocateLv::locate`], which cannot fail here.
    pub fn located(&self, case: &Case) -> Vec<Option<Located>> {
        match &case.labels {
            Some(labels) => slices(labels)
                .iter()
                .map(|lab| Located::from_labels(lab.view(), self.0))
                .collect(),
            None => Vec::new(),
        }
    }
}

impl LocateLv for GroundTruthLv<'_> {
    fn locate(&self, case: &Case) -> Result<Vec<Option<Located>>> {
        Ok(self.located(case))
    }

    fn who(&self) -> &'static str {
        "the ground truth shows"
    }
}

/// The samples of every labelled slice of `case` that shows the LV region, cut around the
/// ground truth's.
pub fn asan_samples(
    case: &Case,
    net: AsanNet,
    geometry: &SampleGeometry,
    sequences: &[Sequence],
) -> Vec<Sample> {
    let located = GroundTruthLv(geometry).located(case);
    located_samples(case, net, geometry.input, sequences, &located)
}

/// The samples of the labelled slices of `case` where `located` has the LV: its sequences cut
/// and masked there (Eq. 2), and the labels cut the same way.
pub fn located_samples(
    case: &Case,
    net: AsanNet,
    input: [usize; 2],
    sequences: &[Sequence],
    located: &[Option<Located>],
) -> Vec<Sample> {
    let Some(labels) = &case.labels else {
        return Vec::new();
    };
    let images: Vec<Vec<Array2<f32>>> = sequences.iter().map(|&s| slices(case.image(s))).collect();
    let mut out = Vec::new();
    for (z, lab) in slices(labels).iter().enumerate() {
        let Some(Some(at)) = located.get(z) else {
            continue;
        };
        let norm: Vec<Array2<f32>> = images
            .iter()
            .map(|image| normalize_slice(image[z].view()))
            .collect();
        let views: Vec<ArrayView2<f32>> = norm.iter().map(|n| n.view()).collect();
        out.push(Sample {
            case: case.id.clone(),
            slice: z,
            channels: at.candidate(&views, input),
            classes: at
                .geometry(input)
                .labels(lab.view())
                .mapv(|c| net.class_of(c)),
        });
    }
    out
}

/// CASN samples: C0, DE, T2 z-scored per slice; the whole crop (`roi` false) or the ROI around the
/// LV region (`roi` true, slices without it skipped); target 1 on the LV region.
pub fn casn_samples(case: &Case, roi: bool, geometry: &SampleGeometry) -> Vec<Sample> {
    let Some(labels) = &case.labels else {
        return Vec::new();
    };
    let sequences: Vec<Vec<Array2<f32>>> = Sequence::ALL
        .iter()
        .map(|&seq| slices(case.image(seq)))
        .collect();
    let mut out = Vec::new();
    for (z, lab) in slices(labels).iter().enumerate() {
        let (h, w) = lab.dim();
        let geo = if roi {
            match roi_geometry(lab.view(), geometry) {
                Some(g) => g,
                None => continue,
            }
        } else {
            let window = CenterWindow::new([h, w], geometry.crop);
            RoiGeometry {
                window,
                roi: RoiBox {
                    x0: 0,
                    x1: geometry.crop[0],
                    y0: 0,
                    y1: geometry.crop[1],
                },
                input: geometry.input,
            }
        };
        let channels = sequences
            .iter()
            .map(|seq| geo.image(normalize_slice(seq[z].view()).view()))
            .collect();
        out.push(Sample {
            case: case.id.clone(),
            slice: z,
            channels,
            classes: geo
                .labels(lab.view())
                .mapv(|c| u8::from(Target::LvRegion.contains(c))),
        });
    }
    out
}

/// The crop → ROI → input geometry of a slice from its ground-truth LV region; `None` when the
/// slice does not show it.
pub fn roi_geometry(labels: ArrayView2<u16>, geometry: &SampleGeometry) -> Option<RoiGeometry> {
    let (h, w) = labels.dim();
    let window = CenterWindow::new([h, w], geometry.crop);
    let cropped = window.apply(labels, Label::Background.code());
    let mask = cropped.mapv(|c| u8::from(Target::LvRegion.contains(c)));
    let roi = roi_box(mask.view(), geometry.margin)?.squared(geometry.crop);
    Some(RoiGeometry {
        window,
        roi,
        input: geometry.input,
    })
}

/// Split cases into training and validation samples as the config says; `locate` finds the LV
/// of the ASANs' slices (CASN samples always come from the ground truth).
pub fn split_samples(
    config: &TrainConfig,
    cases: &[Case],
    locate: &dyn LocateLv,
) -> Result<(Vec<Sample>, Vec<Sample>)> {
    let chosen: Vec<&Case> = match &config.cases {
        None => cases.iter().collect(),
        Some(ids) => {
            for id in ids {
                if !cases.iter().any(|c| &c.id == id) {
                    return Err(Error::invalid(
                        "cases",
                        format!("{id} is not a case of {}", config.data.display()),
                    ));
                }
            }
            cases.iter().filter(|c| ids.contains(&c.id)).collect()
        }
    };
    let cases = chosen;
    let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    for v in &config.validation_cases {
        if !ids.contains(&v.as_str()) {
            return Err(Error::invalid(
                "validation_cases",
                format!("{v} is not a case of {}", config.data.display()),
            ));
        }
    }
    let held_out: Vec<&str> = if config.validation_cases.is_empty() {
        let n = cases.len().div_ceil(5).min(cases.len().saturating_sub(1));
        ids[ids.len() - n..].to_vec()
    } else {
        config.validation_cases.iter().map(String::as_str).collect()
    };
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for case in cases {
        let samples = match config.net.asan() {
            Some(net) => located_samples(
                case,
                net,
                config.geometry.input,
                &config.input_sequences(),
                &locate.locate(case)?,
            ),
            None => config
                .net
                .samples(case, &config.geometry, &config.input_sequences()),
        };
        if held_out.contains(&case.id.as_str()) {
            val.extend(samples);
        } else {
            train.extend(samples);
        }
    }
    if train.is_empty() {
        return Err(Error::Dataset {
            path: config.data.clone(),
            problem: format!("no labelled training slice where {} the LV", locate.who()),
        });
    }
    if val.is_empty() {
        tracing::warn!("no validation slices: validating on the training slices");
        val = train.clone();
    }
    Ok((train, val))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::phantom::{generate_case, PhantomConfig};

    const GEOMETRY: SampleGeometry = SampleGeometry {
        crop: [48, 48],
        margin: 2,
        input: [32, 32],
    };

    /// A small phantom case with pathology and `depth` slices.
    fn pathology_case(depth: usize) -> Case {
        let config = PhantomConfig {
            size: [64, 64],
            spacing: [3.6, 3.6, 14.0],
            slices: [depth, depth],
            ..PhantomConfig::default()
        };
        (0..config.cases)
            .map(|i| generate_case(&config, i))
            .find(|c| c.has_pathology)
            .unwrap()
            .into_case()
    }

    #[test]
    fn each_network_gets_its_channels_classes_and_slices() {
        let (case, geometry) = (pathology_case(3), GEOMETRY);
        let lv_slices = slices(case.labels.as_ref().unwrap())
            .iter()
            .filter(|s| s.iter().any(|&c| Target::LvRegion.contains(c)))
            .count();
        let table = [
            (Network::CasnCoarse, 3, 2, 3),
            (Network::CasnFine, 3, 2, lv_slices),
            (Network::Scar, 2, 3, lv_slices),
            (Network::ScarEdema, 2, 3, lv_slices),
        ];
        for (net, channels, classes, count) in table {
            let samples = net.samples(&case, &geometry, &[Sequence::DE, Sequence::T2]);
            assert_eq!(samples.len(), count, "{net:?}");
            for s in &samples {
                assert_eq!(s.channels.len(), channels, "{net:?}");
                assert!(s.channels.iter().all(|c| c.dim() == (32, 32)));
                assert!(s.classes.iter().all(|&k| (k as usize) < classes), "{net:?}");
            }
            // Every network sees its scored class somewhere in a case with pathology.
            let scored = net.scored_class();
            assert!(
                samples
                    .iter()
                    .any(|s| s.classes.iter().any(|&k| k == scored)),
                "{net:?}"
            );
        }
        // ASAN inputs are masked: zero outside the LV region, which the fine CASN input is not.
        let asan = &Network::ScarEdema.samples(&case, &geometry, &[Sequence::DE, Sequence::T2])[0];
        let fine = &Network::CasnFine.samples(&case, &geometry, &[Sequence::DE, Sequence::T2])[0];
        let zeros = |s: &Sample| s.channels[0].iter().filter(|&&v| v == 0.0).count();
        assert!(zeros(asan) > zeros(fine));
    }

    /// Where the LV is found decides which slices become samples and where they are cut, and
    /// nothing else: slices located as the ground truth has them are its samples bit for bit.
    #[test]
    fn samples_are_cut_where_the_lv_is_located() {
        let (mut case, geometry) = (pathology_case(4), GEOMETRY);
        let sequences = [Sequence::DE, Sequence::T2];
        let mut located = GroundTruthLv(&geometry).located(&case);
        assert!(located.iter().all(Option::is_some), "the LV in every slice");
        // Slice 3 loses its labels: the ground truth has no LV there any more.
        case.labels
            .as_mut()
            .unwrap()
            .index_axis_mut(ndarray::Axis(2), 3)
            .fill(0);
        let truth = asan_samples(&case, AsanNet::ScarEdema, &geometry, &sequences);
        assert_eq!(truth.iter().map(|s| s.slice).collect::<Vec<_>>(), [0, 1, 2]);
        // Slice 0's ROI moves two pixels, slice 1's LV is not found, slice 3's still is.
        let first = located[0].clone().unwrap();
        located[0] = Some(Located {
            roi: RoiBox {
                x0: first.roi.x0 + 2,
                x1: first.roi.x1 + 2,
                ..first.roi
            },
            ..first
        });
        located[1] = None;
        let moved = located_samples(
            &case,
            AsanNet::ScarEdema,
            geometry.input,
            &sequences,
            &located,
        );
        assert_eq!(moved.iter().map(|s| s.slice).collect::<Vec<_>>(), [0, 2, 3]);
        assert_ne!(moved[0].channels, truth[0].channels);
        assert_ne!(moved[0].classes, truth[0].classes);
        assert_eq!(
            moved[1], truth[2],
            "slice 2 located as the ground truth has it"
        );
        // An LV found where the labels have none trains the net on background there.
        assert!(moved[2].classes.iter().all(|&k| k == 0));
        assert!(moved[2].channels[0].iter().any(|&v| v != 0.0));
    }
}
