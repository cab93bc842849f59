//! MyoPS label codes and the binary targets built from them.
//!
//! Ground-truth and predicted label maps use the MyoPS 2020 challenge codes. Models never see
//! these codes: they learn binary or few-class targets derived here, and inference maps its
//! classes back to codes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One MyoPS label code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Background,
    /// Normal left-ventricular myocardium.
    Myocardium,
    LvBlood,
    RvBlood,
    /// Edema without scar.
    Edema,
    Scar,
}

impl Label {
    pub const ALL: [Label; 6] = [
        Label::Background,
        Label::Myocardium,
        Label::LvBlood,
        Label::RvBlood,
        Label::Edema,
        Label::Scar,
    ];

    /// The value stored in MyoPS label volumes.
    pub const fn code(self) -> u16 {
        match self {
            Label::Background => 0,
            Label::Myocardium => 200,
            Label::LvBlood => 500,
            Label::RvBlood => 600,
            Label::Edema => 1220,
            Label::Scar => 2221,
        }
    }

    pub fn from_code(code: u16) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.code() == code)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Label::Background => "background",
            Label::Myocardium => "myocardium",
            Label::LvBlood => "lv_blood",
            Label::RvBlood => "rv_blood",
            Label::Edema => "edema",
            Label::Scar => "scar",
        }
    }
}

/// A binary target: a set of label codes that counts as foreground.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The epicardial region CASN segments: blood pool and the whole myocardium
    /// ({200, 500, 1220, 2221}).
    LvRegion,
    /// {2221}: what ASAN-S segments and the first evaluation target.
    Scar,
    /// {1220, 2221}: what ASAN-P segments and the second evaluation target.
    ScarEdema,
    /// The whole myocardium, pathology included ({200, 1220, 2221}).
    Myo,
    /// The LV blood pool ({500}).
    Lv,
}

impl Target {
    pub const fn labels(self) -> &'static [Label] {
        match self {
            Target::LvRegion => &[Label::Myocardium, Label::LvBlood, Label::Edema, Label::Scar],
            Target::Scar => &[Label::Scar],
            Target::ScarEdema => &[Label::Edema, Label::Scar],
            Target::Myo => &[Label::Myocardium, Label::Edema, Label::Scar],
            Target::Lv => &[Label::LvBlood],
        }
    }

    /// Whether a voxel with MyoPS code `code` belongs to this target.
    pub fn contains(self, code: u16) -> bool {
        self.labels().iter().any(|l| l.code() == code)
    }

    pub const ALL: [Target; 5] = [
        Target::LvRegion,
        Target::Scar,
        Target::ScarEdema,
        Target::Myo,
        Target::Lv,
    ];

    /// The target called `name` (as [`Target::name`] spells it).
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Target::LvRegion => "lv_region",
            Target::Scar => "scar",
            Target::ScarEdema => "scar_edema",
            Target::Myo => "myo",
            Target::Lv => "lv",
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Map a label volume or slice to a binary mask of `target` (1 inside, 0 outside).
pub fn target_mask<D: ndarray::Dimension>(
    labels: &ndarray::Array<u16, D>,
    target: Target,
) -> ndarray::Array<u8, D> {
    labels.mapv(|c| u8::from(target.contains(c)))
}

/// Convert voxel values read from a label volume to MyoPS codes.
///
/// Fails, listing each offending value and its voxel count, when a value is not an integer MyoPS
/// code; the message reads after a file name ("holds unknown label values …").
pub fn codes_from_values<D: ndarray::Dimension>(
    values: &ndarray::Array<f64, D>,
) -> Result<ndarray::Array<u16, D>, String> {
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    let codes = values.mapv(|v| {
        let code = (v.fract() == 0.0 && (0.0..=u16::MAX as f64).contains(&v))
            .then_some(v as u16)
            .filter(|&c| Label::from_code(c).is_some());
        code.unwrap_or_else(|| {
            *unknown.entry(v.to_string()).or_default() += 1;
            0
        })
    });
    if unknown.is_empty() {
        return Ok(codes);
    }
    // An intensity image passed as labels has thousands of distinct values; a few make the point.
    const SHOWN: usize = 8;
    let mut list = unknown
        .iter()
        .take(SHOWN)
        .map(|(v, n)| format!("{v} ({n} voxels)"))
        .collect::<Vec<_>>()
        .join(", ");
    if unknown.len() > SHOWN {
        list.push_str(&format!(
            " and {} more distinct values",
            unknown.len() - SHOWN
        ));
    }
    Err(format!(
        "holds unknown label values {list}; MyoPS codes are 0, 200, 500, 600, 1220, 2221"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_rejected() {
        for l in Label::ALL {
            assert_eq!(Label::from_code(l.code()), Some(l));
        }
        for bad in [1, 100, 1221, 2220, 65535] {
            assert_eq!(Label::from_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn target_masks_follow_the_spec() {
        let labels = array![[0u16, 200, 500, 600, 1220, 2221]];
        let table = [
            (Target::LvRegion, [0u8, 1, 1, 0, 1, 1]),
            (Target::Scar, [0, 0, 0, 0, 0, 1]),
            (Target::ScarEdema, [0, 0, 0, 0, 1, 1]),
            (Target::Myo, [0, 1, 0, 0, 1, 1]),
            (Target::Lv, [0, 0, 1, 0, 0, 0]),
        ];
        for (target, expect) in table {
            let mask = target_mask(&labels, target);
            assert_eq!(mask.row(0).to_vec(), expect, "{target:?}");
        }
    }
}
