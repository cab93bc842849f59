//! Training-time augmentation (SPEC §Stage 2, paper §4.2): horizontal and vertical flips, a rotation
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
    /// Draw the augmentation for `channels` channels from `seed`.
    pub fn sample(config: &AugmentConfig, channels: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = config.flip_probability.clamp(0.0, 1.0) as f64;
        let flip_h = rng.random_bool(p);
        let flip_v = rng.random_bool(p);
        let max = config.max_rotation_deg.abs();
        let angle_deg = if max > 0.0 {
            rng.random_range(-max..=max)
        } else {
            0.0
        };
        let [lo, hi] = config.brightness;
        let brightness = (0..channels)
            .map(|_| {
                if hi > lo {
                    rng.random_range(lo..=hi)
                } else {
                    lo
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
    let images = channels
        .iter()
        .enumerate()
        .map(|(c, img)| {
            let factor = params.brightness.get(c).copied().unwrap_or(1.0);
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
        let (out, l) = augment(
            std::slice::from_ref(&img),
            Some(&lab),
            &params(true, false, 0.0),
        );
        assert_eq!(out[0], array![[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]]);
        assert_eq!(l.unwrap(), array![[3u16, 2, 1], [6, 5, 4]]);
        let (out, _) = augment(&[img], None, &params(false, true, 0.0));
        assert_eq!(out[0], array![[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]]);
    }

    #[test]
    fn images_and_labels_move_together_under_rotation() {
        // A bright square off-centre, labelled 2221 exactly where it is bright.
        let n = 33;
        let lab = Array2::from_shape_fn((n, n), |(i, j)| {
            if (8..14).contains(&i) && (18..26).contains(&j) {
                2221u16
            } else {
                0
            }
        });
        let img = lab.mapv(|c| if c > 0 { 100.0f32 } else { 0.0 });
        let (out, l) = augment(&[img.clone(), img], Some(&lab), &params(false, false, 9.0));
        let l = l.unwrap();
        // Where the rotated label says scar, the rotated image is bright, and vice versa.
        let mut agree = 0;
        for ((i, j), &c) in l.indexed_iter() {
            let bright = out[0][[i, j]] > 50.0;
            agree += usize::from(bright == (c == 2221));
        }
        assert!(agree as f64 > 0.97 * (n * n) as f64, "{agree}");
        assert_ne!(l, lab, "a 9° rotation moves the square");
        assert_eq!(out[0], out[1], "one transform for every channel");
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
