//! The anatomy of a synthetic short-axis stack: which tissue lies at each point of each slice.
//!
//! Everything is defined in millimetres around the image centre, so the same case renders
//! consistently at any matrix size and pixel spacing. Per case the sampler draws the body outline
//! (subcutaneous fat, chest-wall muscle), lungs with vessels, liver, spine and descending aorta, and
//! the heart: an elliptical LV (blood pool and myocardial ring with varying thickness and an
//! irregular endocardium) placed off-centre, an RV crescent with a thin wall, and patchy epicardial
//! fat. Across slices the ventricles shrink from base (slice 0) to apex, the RV faster than the LV,
//! the liver grows in, and the LV centre drifts.
//!
//! Pathology lives in sectors of the LV ring, measured from the endocardium outward (infarcts
//! progress from the subendocardium): a scar core, partly or fully transmural, inside a wider and
//! deeper edema zone, sometimes with a microvascular-obstruction core (labelled scar, dark on LGE).
//! Some cases have no pathology, lesions cover a contiguous run of slices, and some lesions are
//! edema only.

use std::f64::consts::{PI, TAU};

use rand::Rng;

use super::u;
use crate::data::labels::Label;

/// What the scanner sees at a point. Several tissues share a MyoPS label (see [`Tissue::label`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tissue {
    Air,
    Fat,
    Muscle,
    /// Mediastinal and other soft tissue.
    Soft,
    Lung,
    Liver,
    Bone,
    Marrow,
    /// Blood outside the ventricles: aorta, lung vessels.
    Vessel,
    RvWall,
    RvBlood,
    LvBlood,
    /// LV blood next to the endocardium, bright on T2 from slow flow (a classic edema mimic).
    LvBloodSlowFlow,
    Myocardium,
    Edema,
    Scar,
    /// Microvascular obstruction inside a scar: scar by label, dark on LGE.
    Mvo,
}

impl Tissue {
    pub const ALL: [Tissue; 17] = [
        Tissue::Air,
        Tissue::Fat,
        Tissue::Muscle,
        Tissue::Soft,
        Tissue::Lung,
        Tissue::Liver,
        Tissue::Bone,
        Tissue::Marrow,
        Tissue::Vessel,
        Tissue::RvWall,
        Tissue::RvBlood,
        Tissue::LvBlood,
        Tissue::LvBloodSlowFlow,
        Tissue::Myocardium,
        Tissue::Edema,
        Tissue::Scar,
        Tissue::Mvo,
    ];

    /// The MyoPS ground-truth label of this tissue.
    pub fn label(self) -> Label {
        match self {
            Tissue::RvBlood => Label::RvBlood,
            Tissue::LvBlood | Tissue::LvBloodSlowFlow => Label::LvBlood,
            Tissue::Myocardium => Label::Myocardium,
            Tissue::Edema => Label::Edema,
            Tissue::Scar | Tissue::Mvo => Label::Scar,
            _ => Label::Background,
        }
    }
}

/// Rotate a 2-D vector by `angle` radians.
fn rot(v: [f64; 2], angle: f64) -> [f64; 2] {
    let (s, c) = angle.sin_cos();
    [c * v[0] - s * v[1], s * v[0] + c * v[1]]
}

fn add(a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
    [a[0] + b[0], a[1] + b[1]]
}

/// Smallest absolute difference between two angles.
fn angle_between(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(TAU);
    d.min(TAU - d)
}

#[derive(Debug, Clone, Copy)]
struct Ellipse {
    centre: [f64; 2],
    radii: [f64; 2],
    angle: f64,
}

impl Ellipse {
    /// `(x/a)² + (y/b)²` in the ellipse's frame: < 1 inside.
    fn level(&self, p: [f64; 2]) -> f64 {
        let q = rot([p[0] - self.centre[0], p[1] - self.centre[1]], -self.angle);
        (q[0] / self.radii[0]).powi(2) + (q[1] / self.radii[1]).powi(2)
    }

    fn contains(&self, p: [f64; 2]) -> bool {
        self.level(p) < 1.0
    }

    fn grown(&self, mm: f64) -> Ellipse {
        Ellipse {
            radii: [(self.radii[0] + mm).max(0.1), (self.radii[1] + mm).max(0.1)],
            ..*self
        }
    }
}

/// A lesion of the LV wall, in the LV's polar frame.
#[derive(Debug, Clone)]
struct Lesion {
    /// Sector centre (radians) at the base; twists by `twist` towards the apex.
    centre: f64,
    twist: f64,
    /// Scar half-width (radians); 0 for an edema-only lesion.
    scar_half_width: f64,
    /// Scar depth as a fraction of the wall, from the endocardium (1 = transmural).
    transmurality: f64,
    edema_half_width: f64,
    edema_depth: f64,
    mvo: bool,
    wiggle_phase: f64,
    /// Slices (inclusive range) with scar, and with edema.
    scar_slices: (usize, usize),
    edema_slices: (usize, usize),
    /// Per-slice width factors, so sectors are not identical slice to slice.
    width_jitter: Vec<f64>,
}

/// Everything random about one case's anatomy.
#[derive(Debug, Clone)]
pub struct CaseAnatomy {
    pub slices: usize,
    body: Ellipse,
    fat_mm: f64,
    muscle_mm: f64,
    lungs: [Ellipse; 2],
    lung_vessels: Vec<([f64; 2], f64)>,
    liver: Ellipse,
    spine: ([f64; 2], f64),
    aorta: ([f64; 2], f64),
    lv_centre: [f64; 2],
    lv_drift: [f64; 2],
    lv_angle: f64,
    endo_radius: f64,
    ellipticity: f64,
    endo_harmonics: [(f64, f64); 3],
    wall_mm: f64,
    wall_amp: f64,
    wall_phase: f64,
    rv_direction: f64,
    rv_radial: f64,
    rv_tangential: f64,
    rv_wall_mm: f64,
    epi_fat_mm: f64,
    epi_fat_phase: f64,
    slow_flow_mm: f64,
    lesions: Vec<Lesion>,
}

impl CaseAnatomy {
    /// Draw a case for an image whose half-extent is `half_fov` mm per axis.
    pub fn sample(rng: &mut impl Rng, slices: usize, half_fov: [f64; 2]) -> Self {
        let body = Ellipse {
            centre: [u(rng, -8.0, 8.0), u(rng, -8.0, 8.0)],
            radii: [u(rng, 135.0, 165.0), u(rng, 100.0, 125.0)],
            angle: u(rng, -0.15, 0.15),
        };
        let fat_mm = u(rng, 6.0, 16.0);
        let muscle_mm = u(rng, 8.0, 14.0);

        let endo_radius = u(rng, 17.0, 26.0);
        let wall_mm = u(rng, 6.5, 11.5);
        let epi = endo_radius + wall_mm;
        // Keep the whole LV in the field of view, but not at its centre.
        let room = |h: f64| (h - 1.15 * epi - 4.0).max(0.0);
        let lv_centre = [
            u(rng, -0.22, 0.22) * half_fov[0],
            u(rng, -0.22, 0.22) * half_fov[1],
        ];
        let lv_centre = [
            lv_centre[0].clamp(-room(half_fov[0]), room(half_fov[0])),
            lv_centre[1].clamp(-room(half_fov[1]), room(half_fov[1])),
        ];
        let heart_turn = u(rng, -0.6, 0.6);
        let rv_direction = PI + heart_turn;
        let rv_radial = u(rng, 0.45, 0.7) * epi;
        let rv_tangential = u(rng, 1.1, 1.5) * epi;

        let lateral = rot([1.0, 0.0], heart_turn);
        let lung_far = epi + u(rng, 30.0, 45.0);
        let lung_near = epi + 2.0 * rv_radial + u(rng, 35.0, 50.0);
        let lungs = [
            Ellipse {
                centre: add(
                    lv_centre,
                    [
                        lateral[0] * lung_far,
                        lateral[1] * lung_far + u(rng, -10.0, 10.0),
                    ],
                ),
                radii: [u(rng, 30.0, 45.0), u(rng, 55.0, 75.0)],
                angle: u(rng, -0.3, 0.3),
            },
            Ellipse {
                centre: add(
                    lv_centre,
                    [
                        -lateral[0] * lung_near,
                        -lateral[1] * lung_near + u(rng, -10.0, 10.0),
                    ],
                ),
                radii: [u(rng, 30.0, 45.0), u(rng, 55.0, 75.0)],
                angle: u(rng, -0.3, 0.3),
            },
        ];
        let lung_vessels = (0..rng.random_range(3..=7))
            .map(|_| {
                let lung = &lungs[rng.random_range(0..2)];
                let t = u(rng, 0.0, TAU);
                let r = u(rng, 0.2, 0.8);
                let off = rot(
                    [lung.radii[0] * r * t.cos(), lung.radii[1] * r * t.sin()],
                    lung.angle,
                );
                (add(lung.centre, off), u(rng, 2.0, 4.0))
            })
            .collect();
        let liver = Ellipse {
            centre: add(
                lv_centre,
                rot([-u(rng, 20.0, 50.0), -u(rng, 55.0, 75.0)], heart_turn),
            ),
            radii: [u(rng, 55.0, 75.0), u(rng, 40.0, 55.0)],
            angle: u(rng, -0.4, 0.4),
        };
        // +y is anterior (NIfTI's RAS convention): the spine is posterior, the aorta in front of
        // it and to one side.
        let spine_c = add(
            body.centre,
            [u(rng, -10.0, 10.0), -body.radii[1] * u(rng, 0.62, 0.72)],
        );
        let spine_r = u(rng, 13.0, 17.0);
        let aorta_r = u(rng, 9.0, 13.0);
        let aorta_c = add(
            spine_c,
            [-(spine_r + aorta_r + u(rng, 2.0, 8.0)), u(rng, 5.0, 15.0)],
        );

        let lesions = sample_lesions(rng, slices);

        CaseAnatomy {
            slices,
            body,
            fat_mm,
            muscle_mm,
            lungs,
            lung_vessels,
            liver,
            spine: (spine_c, spine_r),
            aorta: (aorta_c, aorta_r),
            lv_centre,
            lv_drift: [u(rng, -6.0, 6.0), u(rng, -6.0, 6.0)],
            lv_angle: u(rng, 0.0, PI),
            endo_radius,
            ellipticity: u(rng, 0.8, 1.0),
            endo_harmonics: std::array::from_fn(|_| (u(rng, 0.0, 0.04), u(rng, 0.0, TAU))),
            wall_mm,
            wall_amp: u(rng, 0.1, 0.3),
            wall_phase: u(rng, 0.0, TAU),
            rv_direction,
            rv_radial,
            rv_tangential,
            rv_wall_mm: u(rng, 2.5, 4.0),
            epi_fat_mm: u(rng, 2.0, 6.0),
            epi_fat_phase: u(rng, 0.0, TAU),
            slow_flow_mm: if rng.random_bool(0.5) {
                u(rng, 1.5, 3.5)
            } else {
                0.0
            },
            lesions,
        }
    }

    /// Whether any slice of this case has scar or edema.
    pub fn has_pathology(&self) -> bool {
        !self.lesions.is_empty()
    }

    /// The tissue at point `p` (mm from the image centre) of slice `k`.
    pub fn tissue_at(&self, k: usize, p: [f64; 2]) -> Tissue {
        let f = if self.slices > 1 {
            k as f64 / (self.slices - 1) as f64
        } else {
            0.0
        };
        if let Some(t) = self.heart_at(k, f, p) {
            return t;
        }
        self.surroundings_at(f, p)
    }

    fn heart_at(&self, k: usize, f: f64, p: [f64; 2]) -> Option<Tissue> {
        let centre = add(self.lv_centre, [self.lv_drift[0] * f, self.lv_drift[1] * f]);
        let scale = 1.0 - 0.45 * f.powf(1.3);
        let q = rot([p[0] - centre[0], p[1] - centre[1]], -self.lv_angle);
        let dist = q[0].hypot(q[1]);
        let theta = q[1].atan2(q[0]);

        let (a, b) = (
            self.endo_radius * scale * (1.0 - 0.2 * f),
            self.endo_radius * scale * (1.0 - 0.2 * f) * self.ellipticity,
        );
        let ellipse_r = a * b / ((b * theta.cos()).powi(2) + (a * theta.sin()).powi(2)).sqrt();
        let ripple: f64 = self
            .endo_harmonics
            .iter()
            .enumerate()
            .map(|(i, (amp, ph))| amp * ((i as f64 + 3.0) * theta + ph).sin())
            .sum();
        let r_endo = ellipse_r * (1.0 + ripple);
        let wall = self.wall_mm
            * (1.0 - 0.25 * f)
            * (1.0 + self.wall_amp * (theta - self.wall_phase).cos());
        let r_epi = r_endo + wall;

        if dist < r_endo {
            let slow = self.slow_flow_mm > 0.0 && r_endo - dist < self.slow_flow_mm;
            return Some(if slow {
                Tissue::LvBloodSlowFlow
            } else {
                Tissue::LvBlood
            });
        }
        if dist < r_epi {
            let depth = (dist - r_endo) / wall;
            return Some(self.wall_tissue(k, f, theta, depth));
        }

        // Right ventricle: an ellipse overlapping the septum, minus the LV.
        let rv_scale = (1.0 - 0.8 * f).max(0.0);
        let epi_mean = (a + b) / 2.0 + self.wall_mm * (1.0 - 0.25 * f);
        let rv_dir = self.rv_direction;
        let rv_radial = self.rv_radial * rv_scale;
        if rv_radial > 3.0 {
            let offset = 0.7 * epi_mean + 0.6 * rv_radial;
            let rv = Ellipse {
                centre: add(centre, [offset * rv_dir.cos(), offset * rv_dir.sin()]),
                radii: [rv_radial, self.rv_tangential * (0.5 + 0.5 * rv_scale)],
                angle: rv_dir,
            };
            if rv.contains(p) {
                return Some(Tissue::RvBlood);
            }
            if rv.grown(self.rv_wall_mm).contains(p) {
                return Some(Tissue::RvWall);
            }
            if rv.grown(self.rv_wall_mm + self.epi_fat_mm).contains(p)
                && self.epi_fat_here(p, centre)
            {
                return Some(Tissue::Fat);
            }
        }
        if dist < r_epi + self.epi_fat_mm && self.epi_fat_here(p, centre) {
            return Some(Tissue::Fat);
        }
        None
    }

    /// Epicardial fat is patchy: present on roughly half of the circumference.
    fn epi_fat_here(&self, p: [f64; 2], centre: [f64; 2]) -> bool {
        let theta = (p[1] - centre[1]).atan2(p[0] - centre[0]);
        (2.0 * theta + self.epi_fat_phase).sin() + 0.5 * (5.0 * theta).sin() > 0.3
    }

    /// The tissue at angle `theta` and fractional depth `depth` (0 endocardium, 1 epicardium) of
    /// the LV wall in slice `k`, `f` of the way from base to apex.
    fn wall_tissue(&self, k: usize, f: f64, theta: f64, depth: f64) -> Tissue {
        let mut tissue = Tissue::Myocardium;
        for lesion in &self.lesions {
            let centre = lesion.centre + lesion.twist * f;
            let d = angle_between(theta, centre);
            let jitter = lesion.width_jitter[k];
            let wiggle = 1.0 + 0.08 * (7.0 * theta + lesion.wiggle_phase).sin();
            let in_range = |(lo, hi): (usize, usize)| (lo..=hi).contains(&k);

            let hw = lesion.scar_half_width * jitter;
            if in_range(lesion.scar_slices) && hw > 0.0 && d < hw {
                let profile = (1.0 - (d / hw).powi(2)).sqrt();
                let reach = (lesion.transmurality * (0.35 + 0.65 * profile) * wiggle).min(1.0);
                if depth < reach {
                    let core = lesion.mvo && depth < 0.3 * reach && d < 0.5 * hw;
                    return if core { Tissue::Mvo } else { Tissue::Scar };
                }
            }
            let ew = lesion.edema_half_width * jitter;
            if in_range(lesion.edema_slices) && d < ew {
                let profile = (1.0 - (d / ew).powi(2)).sqrt();
                let reach = (lesion.edema_depth * (0.4 + 0.6 * profile) * wiggle).min(1.0);
                if depth < reach {
                    tissue = Tissue::Edema;
                }
            }
        }
        tissue
    }

    fn surroundings_at(&self, f: f64, p: [f64; 2]) -> Tissue {
        let body_level = self.body.level(p);
        if body_level >= 1.0 {
            return Tissue::Air;
        }
        let inner = self.body.grown(-self.fat_mm);
        if !inner.contains(p) {
            return Tissue::Fat;
        }
        let (spine_c, spine_r) = self.spine;
        let spine_d = (p[0] - spine_c[0]).hypot(p[1] - spine_c[1]);
        if spine_d < spine_r {
            return if spine_d < spine_r - 2.5 {
                Tissue::Marrow
            } else {
                Tissue::Bone
            };
        }
        let (aorta_c, aorta_r) = self.aorta;
        if (p[0] - aorta_c[0]).hypot(p[1] - aorta_c[1]) < aorta_r {
            return Tissue::Vessel;
        }
        let cavity = inner.grown(-self.muscle_mm);
        if !cavity.contains(p) {
            return Tissue::Muscle;
        }
        // The liver rises into the lower slices (towards the apex).
        let liver = Ellipse {
            radii: [
                self.liver.radii[0] * (0.5 + 0.7 * f),
                self.liver.radii[1] * (0.5 + 0.7 * f),
            ],
            ..self.liver
        };
        if liver.contains(p) {
            return Tissue::Liver;
        }
        if self.lungs.iter().any(|l| l.contains(p)) {
            let vessel = self
                .lung_vessels
                .iter()
                .any(|(c, r)| (p[0] - c[0]).hypot(p[1] - c[1]) < *r);
            return if vessel { Tissue::Vessel } else { Tissue::Lung };
        }
        Tissue::Soft
    }
}

/// Draw the lesions of a case: none in about 15 % of cases, else one (sometimes two).
fn sample_lesions(rng: &mut impl Rng, slices: usize) -> Vec<Lesion> {
    if rng.random_bool(0.15) {
        return Vec::new();
    }
    let count = if rng.random_bool(0.2) { 2 } else { 1 };
    (0..count)
        .map(|i| {
            let edema_only = rng.random_bool(0.1);
            let transmural = rng.random_bool(0.35);
            let scar_half_width = if edema_only {
                0.0
            } else {
                u(rng, 25f64, 70f64).to_radians() * if i > 0 { 0.6 } else { 1.0 }
            };
            let transmurality = if transmural { 1.0 } else { u(rng, 0.35, 0.85) };
            let start = rng.random_range(0..slices.max(1));
            let len = rng.random_range(1..=(slices - start).max(1));
            let scar_slices = (start, start + len - 1);
            let edema_slices = (
                scar_slices.0.saturating_sub(rng.random_range(0..=1)),
                (scar_slices.1 + rng.random_range(0..=1)).min(slices - 1),
            );
            Lesion {
                centre: u(rng, 0.0, TAU),
                twist: u(rng, -10f64, 10f64).to_radians(),
                scar_half_width,
                transmurality,
                edema_half_width: scar_half_width.max(15f64.to_radians())
                    + u(rng, 10f64, 35f64).to_radians(),
                edema_depth: (transmurality + u(rng, 0.2, 0.5)).min(1.0),
                mvo: transmural && rng.random_bool(0.4),
                wiggle_phase: u(rng, 0.0, TAU),
                scar_slices,
                edema_slices,
                width_jitter: (0..slices).map(|_| u(rng, 0.8, 1.2)).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn the_lv_shrinks_from_base_to_apex() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let a = CaseAnatomy::sample(&mut rng, 5, [115.0, 115.0]);
        let lv_area = |k| {
            let mut n = 0;
            for i in -120..120 {
                for j in -120..120 {
                    let t = a.tissue_at(k, [i as f64, j as f64]);
                    n += usize::from(t.label() != Label::Background && t.label() != Label::RvBlood);
                }
            }
            n
        };
        let areas: Vec<usize> = (0..5).map(lv_area).collect();
        assert!(areas.windows(2).all(|w| w[0] > w[1]), "{areas:?}");
    }
}
