//! ASAN training samples: for every labelled slice, the masked ROI of DE and T2 (Eq. 2) and the
//! class map of one of the two nets.
//!
//! Training ROIs come from the ground truth (§3.1: test ROIs must come from CASN's prediction;
//! that is inference's job): the LV region's bounding box in the centre-cropped slice, widened
//! by a margin and squared, resized to the network input. Each sequence is z-scored per slice
//! before cropping, and multiplied by the LV-region mask afterwards, so the network sees only the
//! candidate structure.

use ndarray::{Array2, ArrayView2};

use crate::data::cases::{Case, Sequence};
use crate::data::labels::{Label, Target};
use crate::data::preprocess::{normalize_slice, roi_box, slices, CenterWindow, RoiGeometry};

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

/// The samples of every labelled slice of `case` that shows the LV region.
pub fn asan_samples(case: &Case, net: AsanNet, geometry: &SampleGeometry) -> Vec<Sample> {
    let Some(labels) = &case.labels else {
        return Vec::new();
    };
    let de = slices(case.image(Sequence::DE));
    let t2 = slices(case.image(Sequence::T2));
    let mut out = Vec::new();
    for (z, lab) in slices(labels).iter().enumerate() {
        let Some(geo) = roi_geometry(lab.view(), geometry) else {
            continue;
        };
        let region = geo
            .labels(lab.view())
            .mapv(|c| Target::LvRegion.contains(c));
        let channels = [&de[z], &t2[z]]
            .iter()
            .map(|img| {
                let mut roi = geo.image(normalize_slice(img.view()).view());
                roi.zip_mut_with(&region, |v, &inside| {
                    if !inside {
                        *v = 0.0;
                    }
                });
                roi
            })
            .collect();
        out.push(Sample {
            case: case.id.clone(),
            slice: z,
            channels,
            classes: geo.labels(lab.view()).mapv(|c| net.class_of(c)),
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
