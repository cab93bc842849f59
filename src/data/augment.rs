//! Training-time augmentation (AWSnet paper §4.2): horizontal and vertical flips, a rotation
//! of at most 10°, and a brightness factor drawn from U[0.5, 1.5] for each sequence.
//!
//! One geometric transform is drawn per sample and applied to every channel and to the labels, so
//! they stay aligned; images are resampled bilinearly, labels by nearest neighbour, and pixels that
//! rotate in from outside the slice are 0 (the mean of a normalised image; background for labels).
//! Brightness multiplies each channel by its own factor. All draws come from a ChaCha8 stream
//! seeded with the caller's seed, so a (seed, sample) pair always gives the same augmentation.
//!
//! Flips: "horizontal" mirrors axis 1 (columns), "vertical" mirrors axis 0 (rows). The transform is
//! flip first, then rotation about the slice centre.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which augmentations to draw, and their ranges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Probability of each flip (horizontal, vertical), drawn independently.
    pub flip_probability: f32,
    /// Rotation angle drawn from U[−max, max] degrees.
    pub max_rotation_deg: f32,
    /// Brightness factor range per sequence.
    pub brightness: [f32; 2],
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            flip_probability: 0.5,
            max_rotation_deg: 10.0,
            brightness: [0.5, 1.5],
        }
    }
}

impl AugmentConfig {
    /// Check the ranges, naming the field that is out of them.
    pub fn validate(&self) -> Result<()> {
        let p = self.flip_probability;
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(
                "augment.flip_probability",
                format!("{p} is not in [0, 1]"),
            ));
        }
        let r = self.max_rotation_deg;
        if !(0.0..=180.0).contains(&r) {
            return Err(Error::invalid(
                "augment.max_rotation_deg",
                format!("{r} is not in [0, 180]"),
            ));
        }
        let [lo, hi] = self.brightness;
        if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi) {
            return Err(Error::invalid(
                "augment.brightness",
                format!("[{lo}, {hi}] is not a range 0 < lo ≤ hi"),
            ));
        }
        Ok(())
    }

    /// No augmentation at all (validation, inference).
    pub fn none() -> Self {
        AugmentConfig {
            flip_probability: 0.0,
            max_rotation_deg: 0.0,
            brightness: [1.0, 1.0],
        }
    }
}

/// One drawn augmentation.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentParams {
    pub flip_h: bool,
    pub flip_v: bool,
    pub angle_deg: f32,
    /// One factor per channel.
    pub brightness: Vec<f32>,
}

impl AugmentParams {
    /// Draw the augmentation for `channels` channels from `seed`. `config` should have passed
    /// [`AugmentConfig::validate`]; out-of-range values are tamed rather than trusted.
    pub fn sample(config: &AugmentConfig, channels: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = f64::from(config.flip_probability);
        let p = if p.is_finite() {
            p.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let flip_h = rng.random_bool(p);
        let flip_v = rng.random_bool(p);
        let max = config.max_rotation_deg.abs();
        let angle_deg = if max > 0.0 && max.is_finite() {
            rng.random_range(-max..=max)
        } else {
            0.0
        };
        let [lo, hi] = config.brightness;
        let brightness = (0..channels)
            .map(|_| {
                if hi > lo && hi.is_finite() && lo.is_finite() {
                    rng.random_range(lo..=hi)
                } else {
                    1.0
                }
            })
            .collect();
        AugmentParams {
            flip_h,
            flip_v,
            angle_deg,
            brightness,
        }
    }

    /// The source position sampled by output pixel `(i, j)` of an `n0 × n1` slice.
    fn source(&self, i: usize, j: usize, n0: usize, n1: usize) -> (f64, f64) {
        let (c0, c1) = ((n0 as f64 - 1.0) / 2.0, (n1 as f64 - 1.0) / 2.0);
        // Undo the rotation, then the flips (the forward transform is flip, then rotate).
        let (sin, cos) = (-(self.angle_deg as f64)).to_radians().sin_cos();
        let (u, v) = (i as f64 - c0, j as f64 - c1);
        let (mut a, mut b) = (cos * u - sin * v + c0, sin * u + cos * v + c1);
        if self.flip_v {
            a = (n0 as f64 - 1.0) - a;
        }
        if self.flip_h {
            b = (n1 as f64 - 1.0) - b;
        }
        (a, b)
    }
}

/// Apply `params` to the channels of one sample and, if given, its label map.
pub fn augment(
    channels: &[Array2<f32>],
    labels: Option<&Array2<u16>>,
    params: &AugmentParams,
) -> (Vec<Array2<f32>>, Option<Array2<u16>>) {
    assert_eq!(
        params.brightness.len(),
        channels.len(),
        "augmentation drawn for another number of channels"
    );
    let images = channels
        .iter()
        .enumerate()
        .map(|(c, img)| {
            let factor = params.brightness[c];
            let (n0, n1) = img.dim();
            Array2::from_shape_fn((n0, n1), |(i, j)| {
                let (a, b) = params.source(i, j, n0, n1);
                bilinear_at(img, a, b) * factor
            })
        })
        .collect();
    let labels = labels.map(|lab| {
        let (n0, n1) = lab.dim();
        Array2::from_shape_fn((n0, n1), |(i, j)| {
            let (a, b) = params.source(i, j, n0, n1);
            nearest_at(lab, a, b)
        })
    });
    (images, labels)
}

/// Bilinear sample at a fractional position; 0 outside the slice.
fn bilinear_at(img: &Array2<f32>, a: f64, b: f64) -> f32 {
    let (n0, n1) = img.dim();
    let tap = |x: isize, y: isize| -> f32 {
        if x < 0 || y < 0 || x as usize >= n0 || y as usize >= n1 {
            0.0
        } else {
            img[[x as usize, y as usize]]
        }
    };
    // Snap positions within float noise of a pixel centre, so the identity and quarter turns
    // reproduce pixels exactly.
    let snap = |v: f64| {
        if (v - v.round()).abs() < 1e-9 {
            v.round()
        } else {
            v
        }
    };
    let (a, b) = (snap(a), snap(b));
    let (a0, b0) = (a.floor(), b.floor());
    let (wa, wb) = ((a - a0) as f32, (b - b0) as f32);
    let (a0, b0) = (a0 as isize, b0 as isize);
    let top = tap(a0, b0) * (1.0 - wb) + tap(a0, b0 + 1) * wb;
    let bottom = tap(a0 + 1, b0) * (1.0 - wb) + tap(a0 + 1, b0 + 1) * wb;
    top * (1.0 - wa) + bottom * wa
}

/// Nearest sample at a fractional position; background (0) outside the slice.
fn nearest_at(lab: &Array2<u16>, a: f64, b: f64) -> u16 {
    let (x, y) = (a.round(), b.round());
    if x < 0.0 || y < 0.0 || x as usize >= lab.nrows() || y as usize >= lab.ncols() {
        0
    } else {
        lab[[x as usize, y as usize]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn params(flip_h: bool, flip_v: bool, angle_deg: f32) -> AugmentParams {
        AugmentParams {
            flip_h,
            flip_v,
            angle_deg,
            brightness: vec![1.0, 1.0],
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_augmentation_and_ranges_hold() {
        let cfg = AugmentConfig::default();
        let mut flips = 0;
        for seed in 0..200 {
            let p = AugmentParams::sample(&cfg, 2, seed);
            assert_eq!(p, AugmentParams::sample(&cfg, 2, seed));
            assert!(p.angle_deg.abs() <= 10.0);
            assert!(p.brightness.iter().all(|b| (0.5..=1.5).contains(b)));
            flips += p.flip_h as usize;
        }
        // 200 fair coin flips: far from all or none.
        assert!((50..150).contains(&flips), "{flips}");
        assert_ne!(
            AugmentParams::sample(&cfg, 2, 1),
            AugmentParams::sample(&cfg, 2, 2)
        );
    }

    #[test]
    fn flips_mirror_the_documented_axes() {
        let img = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let lab = img.mapv(|v| v as u16);
        let one_channel = |h, v| AugmentParams {
            brightness: vec![1.0],
            ..params(h, v, 0.0)
        };
        let (out, l) = augment(
            std::slice::from_ref(&img),
            Some(&lab),
            &one_channel(true, false),
        );
        assert_eq!(out[0], array![[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]]);
        assert_eq!(l.unwrap(), array![[3u16, 2, 1], [6, 5, 4]]);
        let (out, _) = augment(&[img], None, &one_channel(false, true));
        assert_eq!(out[0], array![[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]]);
    }

    /// Centroid of the pixels where `inside` holds, and their count.
    fn centroid<T>(a: &Array2<T>, inside: impl Fn(&T) -> bool) -> (f64, f64, usize) {
        let (mut si, mut sj, mut n) = (0.0, 0.0, 0);
        for ((i, j), v) in a.indexed_iter() {
            if inside(v) {
                si += i as f64;
                sj += j as f64;
                n += 1;
            }
        }
        (si / n as f64, sj / n as f64, n)
    }

    #[test]
    fn images_and_labels_move_together_under_rotation_and_flips() {
        // A bright square off-centre, labelled 2221 exactly where it is bright.
        let n = 41;
        let lab = Array2::from_shape_fn((n, n), |(i, j)| {
            if (8..16).contains(&i) && (24..32).contains(&j) {
                2221u16
            } else {
                0
            }
        });
        let img = lab.mapv(|c| if c > 0 { 100.0f32 } else { 0.0 });
        let (ci, cj, area) = centroid(&lab, |&c| c > 0);
        let c = (n as f64 - 1.0) / 2.0;
        for (flip_h, flip_v, angle) in [
            (false, false, 30.0f32),
            (true, false, -25.0),
            (true, true, 10.0),
        ] {
            let p = params(flip_h, flip_v, angle);
            let (out, l) = augment(&[img.clone(), img.clone()], Some(&lab), &p);
            let l = l.unwrap();
            assert_eq!(out[0], out[1], "one transform for every channel");
            // Where the square should go: flip, then rotate by +angle about the centre.
            let (mut u, mut v) = (ci - c, cj - c);
            if flip_v {
                u = -u;
            }
            if flip_h {
                v = -v;
            }
            let (sin, cos) = (angle as f64).to_radians().sin_cos();
            let expect = (c + cos * u - sin * v, c + sin * u + cos * v);
            let (li, lj, l_area) = centroid(&l, |&c| c == 2221);
            let (ii, ij, _) = centroid(&out[0], |&v| v > 50.0);
            for (what, (a, b)) in [("labels", (li, lj)), ("image", (ii, ij))] {
                assert!(
                    (a - expect.0).abs() < 1.0 && (b - expect.1).abs() < 1.0,
                    "{what} centroid ({a:.2}, {b:.2}) vs expected ({:.2}, {:.2}) for {p:?}",
                    expect.0,
                    expect.1
                );
            }
            // Nearest-neighbour labels keep the area to within the square's perimeter.
            let err = (l_area as f64 - area as f64).abs();
            assert!(err < 0.25 * area as f64, "{l_area} vs {area}");
            // Labels and bright pixels overlap: IoU over the foreground.
            let (mut inter, mut union) = (0, 0);
            for ((i, j), &code) in l.indexed_iter() {
                let (a, b) = (code == 2221, out[0][[i, j]] > 50.0);
                inter += usize::from(a && b);
                union += usize::from(a || b);
            }
            assert!(
                inter as f64 > 0.85 * union as f64,
                "IoU {inter}/{union} for {p:?}"
            );
        }
    }

    #[test]
    fn configs_out_of_range_are_refused_by_field() {
        assert!(AugmentConfig::default().validate().is_ok());
        assert!(AugmentConfig::none().validate().is_ok());
        let d = AugmentConfig::default();
        let table = [
            (
                AugmentConfig {
                    flip_probability: f32::NAN,
                    ..d
                },
                "flip_probability",
            ),
            (
                AugmentConfig {
                    max_rotation_deg: -1.0,
                    ..d
                },
                "max_rotation_deg",
            ),
            (
                AugmentConfig {
                    brightness: [1.5, 0.5],
                    ..d
                },
                "brightness",
            ),
        ];
        for (cfg, field) in table {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
            // Sampling never panics, even on a config that was not validated.
            let _ = AugmentParams::sample(&cfg, 2, 0);
        }
    }

    #[test]
    fn brightness_scales_each_channel_by_its_factor() {
        let img = Array2::from_elem((4, 4), 2.0f32);
        let p = AugmentParams {
            brightness: vec![0.5, 1.5],
            ..params(false, false, 0.0)
        };
        let (out, _) = augment(&[img.clone(), img], None, &p);
        assert!(out[0].iter().all(|&v| v == 1.0));
        assert!(out[1].iter().all(|&v| v == 3.0));
    }
}
