//! How each sequence renders each tissue, and the acquisition's imperfections.
//!
//! Contrasts follow the clinical sequences:
//! - bSSFP (C0): bright blood and fat, dark myocardium, no contrast between normal and diseased
//!   myocardium;
//! - LGE (DE): normal myocardium nulled (dark), scar bright, edema mildly bright, blood grey,
//!   microvascular obstruction dark inside a bright scar;
//! - T2-weighted (T2): dark (black-blood) pools, bright edema and scar, with a slow-flow rim in
//!   some cases that mimics edema.
//!
//! Per case every tissue's level is jittered by ±12 % and each sequence gets its own gain. The
//! rendered image is then blurred (Gaussian, per-sequence width), multiplied by a smooth bias field
//! (the exponential of three random low-frequency cosines: a gain between about 0.7 and 1.4), and
//! given Rician noise (magnitude of a
//! complex signal with Gaussian noise in both channels), as MR magnitude images have.
//!
//! A [`Difficulty`] above 0 makes the lesions harder to segment without changing any random
//! draw: it pulls the lesion tissues' levels towards the normal myocardium's and scales the
//! noise, as a lower-dose or faster acquisition would.

use ndarray::Array2;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::anatomy::Tissue;
use super::u;
use crate::data::cases::Sequence;

/// Typical signal of `tissue` in `seq`, in arbitrary scanner units.
fn base_level(seq: Sequence, tissue: Tissue) -> f64 {
    use Tissue::*;
    let [c0, de, t2] = match tissue {
        Air => [0.0, 0.0, 0.0],
        Fat => [950.0, 750.0, 800.0],
        Muscle => [300.0, 180.0, 260.0],
        Soft => [420.0, 260.0, 380.0],
        Lung => [40.0, 30.0, 30.0],
        Liver => [380.0, 300.0, 280.0],
        Bone => [150.0, 120.0, 150.0],
        Marrow => [650.0, 500.0, 550.0],
        Vessel => [880.0, 430.0, 70.0],
        RvWall => [260.0, 60.0, 300.0],
        RvBlood => [920.0, 450.0, 80.0],
        LvBlood => [950.0, 460.0, 80.0],
        LvBloodSlowFlow => [950.0, 460.0, 330.0],
        Myocardium => [260.0, 50.0, 300.0],
        Edema => [270.0, 200.0, 620.0],
        Scar => [265.0, 1000.0, 560.0],
        Mvo => [265.0, 90.0, 450.0],
    };
    match seq {
        Sequence::C0 => c0,
        Sequence::DE => de,
        Sequence::T2 => t2,
    }
}

/// How far lesion contrast is lowered and noise raised, in `[0, 1]` (0: the default rendering).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Difficulty(pub f64);

impl Difficulty {
    /// Fraction of a lesion's contrast to normal myocardium that is removed at difficulty 1.
    const CONTRAST_LOSS: f64 = 0.6;
    /// Noise factor at difficulty 1.
    const NOISE_GAIN: f64 = 2.5;

    /// The fraction of each lesion's contrast to myocardium that remains.
    fn contrast_kept(self) -> f64 {
        1.0 - Self::CONTRAST_LOSS * self.0
    }

    fn noise_factor(self) -> f64 {
        1.0 + (Self::NOISE_GAIN - 1.0) * self.0
    }
}

/// One sequence's rendering settings for one case.
#[derive(Debug, Clone)]
pub struct SequenceStyle {
    /// Signal per tissue, indexed by `Tissue as usize`.
    levels: [f64; Tissue::ALL.len()],
    blur_px: f64,
    bias: Vec<(f64, f64, f64, f64)>,
    noise: f64,
}

impl SequenceStyle {
    pub fn sample(rng: &mut impl Rng, seq: Sequence, difficulty: Difficulty) -> Self {
        let gain = u(rng, 0.7, 1.4);
        let mut levels = Tissue::ALL.map(|t| base_level(seq, t) * gain * u(rng, 0.88, 1.12));
        // Skipped at 0 so the default rendering keeps its bytes to the last bit.
        if difficulty.0 > 0.0 {
            let myocardium = levels[Tissue::Myocardium as usize];
            for lesion in [Tissue::Scar, Tissue::Edema, Tissue::Mvo] {
                let level = &mut levels[lesion as usize];
                *level = myocardium + (*level - myocardium) * difficulty.contrast_kept();
            }
        }
        let blur_px = match seq {
            Sequence::C0 => u(rng, 0.4, 0.7),
            Sequence::DE => u(rng, 0.5, 0.9),
            Sequence::T2 => u(rng, 0.7, 1.1),
        };
        // (amplitude, spatial frequency along x and y in cycles per mm, phase)
        let bias = (0..3)
            .map(|_| {
                let wavelength = u(rng, 250.0, 600.0);
                let dir = u(rng, 0.0, std::f64::consts::TAU);
                (
                    u(rng, -0.12, 0.12),
                    dir.cos() / wavelength,
                    dir.sin() / wavelength,
                    u(rng, 0.0, std::f64::consts::TAU),
                )
            })
            .collect();
        let noise = u(rng, 0.02, 0.045) * 1000.0 * gain * difficulty.noise_factor();
        SequenceStyle {
            levels,
            blur_px,
            bias,
            noise,
        }
    }

    fn level(&self, t: Tissue) -> f64 {
        self.levels[t as usize]
    }

    /// Render one slice: `tissues` indexed `[x, y]`, `coords` gives each pixel's position in mm.
    pub fn render(
        &self,
        tissues: &Array2<Tissue>,
        coords: impl Fn(usize, usize) -> [f64; 2],
        rng: &mut impl Rng,
    ) -> Array2<f64> {
        let clean = tissues.mapv(|t| self.level(t));
        let blurred = gaussian_blur(&clean, self.blur_px);
        let (n0, n1) = blurred.dim();
        Array2::from_shape_fn((n0, n1), |(i, j)| {
            let p = coords(i, j);
            let bias: f64 = self
                .bias
                .iter()
                .map(|(a, fx, fy, ph)| {
                    a * (std::f64::consts::TAU * (fx * p[0] + fy * p[1]) + ph).cos()
                })
                .sum::<f64>()
                .exp();
            blurred[[i, j]] * bias
        })
        .mapv(|s| rician(s, self.noise, rng))
    }
}

fn rician(signal: f64, sigma: f64, rng: &mut impl Rng) -> f64 {
    let re: f64 = StandardNormal.sample(rng);
    let im: f64 = StandardNormal.sample(rng);
    (signal + sigma * re).hypot(sigma * im)
}

/// Separable Gaussian blur with standard deviation `sigma` pixels; borders replicate the edge.
pub fn gaussian_blur(img: &Array2<f64>, sigma: f64) -> Array2<f64> {
    if sigma <= 0.0 {
        return img.clone();
    }
    let radius = (3.0 * sigma).ceil() as isize;
    let mut kernel: Vec<f64> = (-radius..=radius)
        .map(|k| (-(k as f64).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= sum);
    let (n0, n1) = img.dim();
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    let pass0 = Array2::from_shape_fn((n0, n1), |(i, j)| -> f64 {
        kernel
            .iter()
            .enumerate()
            .map(|(k, w)| w * img[[clamp(i as isize + k as isize - radius, n0), j]])
            .sum()
    });
    Array2::from_shape_fn((n0, n1), |(i, j)| -> f64 {
        kernel
            .iter()
            .enumerate()
            .map(|(k, w)| w * pass0[[i, clamp(j as isize + k as isize - radius, n1)]])
            .sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrasts_order_tissues_as_the_sequences_do() {
        use Tissue::*;
        let c0 = |t| base_level(Sequence::C0, t);
        let de = |t| base_level(Sequence::DE, t);
        let t2 = |t| base_level(Sequence::T2, t);
        // bSSFP: bright blood, dark myocardium, pathology invisible (within 5 %).
        assert!(c0(LvBlood) > 3.0 * c0(Myocardium));
        assert!((c0(Scar) / c0(Myocardium) - 1.0).abs() < 0.05);
        assert!((c0(Edema) / c0(Myocardium) - 1.0).abs() < 0.05);
        // LGE: scar brightest, edema mildly bright, normal myocardium nulled.
        assert!(de(Scar) > 2.0 * de(LvBlood) && de(Edema) > 3.0 * de(Myocardium));
        assert!(de(Edema) < de(LvBlood));
        // T2: bright edema and scar, dark blood.
        assert!(t2(Edema) > 2.0 * t2(Myocardium) && t2(Scar) > 1.5 * t2(Myocardium));
        assert!(t2(LvBlood) < 0.5 * t2(Myocardium));
    }

    #[test]
    fn difficulty_scales_the_noise_and_nothing_else_at_zero() {
        use rand::SeedableRng;
        let air = Array2::from_elem((32, 32), Tissue::Air);
        let render = |d: f64| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
            let style = SequenceStyle::sample(&mut rng, Sequence::DE, Difficulty(d));
            let img = style.render(&air, |i, j| [i as f64, j as f64], &mut rng);
            (style, img.mean().unwrap())
        };
        let (plain, plain_noise) = render(0.0);
        let (hard, hard_noise) = render(1.0);
        // Pure noise on zero signal (Rician: mean σ·√(π/2)), drawn from the same stream.
        assert!((hard_noise / plain_noise - 2.5).abs() < 1e-9);
        assert_eq!(plain.level(Tissue::LvBlood), hard.level(Tissue::LvBlood));
        assert_eq!(
            plain.level(Tissue::Myocardium),
            hard.level(Tissue::Myocardium)
        );
        let contrast = |s: &SequenceStyle| s.level(Tissue::Scar) - s.level(Tissue::Myocardium);
        assert!((contrast(&hard) / contrast(&plain) - 0.4).abs() < 1e-9);
    }

    #[test]
    fn blur_preserves_constants_and_mass() {
        let flat = Array2::from_elem((9, 7), 4.0);
        assert!(gaussian_blur(&flat, 1.0)
            .iter()
            .all(|v| (v - 4.0).abs() < 1e-9));
        let mut dot = Array2::zeros((21, 21));
        dot[[10, 10]] = 1.0;
        let b = gaussian_blur(&dot, 1.2);
        assert!((b.sum() - 1.0).abs() < 1e-9);
        assert!(b[[10, 10]] < 0.2 && b[[10, 11]] > 0.0);
    }
}
