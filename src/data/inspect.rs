//! What `awsnet inspect` reports about a NIfTI file: its header in plain terms, the voxel-to-world
//! affine, and statistics of the scaled voxels.

use std::path::Path;

use nifti::NiftiHeader;
use serde::Serialize;

use crate::data::nifti_read::{datatype_code_name, pixdim_or_one, read_nifti, NiftiVolume};
use crate::error::Result;

/// Summary of one NIfTI file. Non-finite header values serialise as `null`.
#[derive(Debug, Clone, Serialize)]
pub struct NiftiSummary {
    pub path: String,
    /// Dimensions as stored: `[x, y, z]` or `[x, y, z, t]`, …
    pub shape: Vec<usize>,
    pub datatype: &'static str,
    pub datatype_code: i16,
    /// `pixdim` of each stored dimension, in the file's units.
    pub spacing: Vec<f32>,
    pub units: Units,
    pub scl_slope: f32,
    pub scl_inter: f32,
    /// Whether slope and intercept were applied to the statistics below.
    pub scaling_applied: bool,
    pub qform_code: i16,
    pub sform_code: i16,
    /// Which transform `affine` comes from: `sform`, `qform` or `pixdim` (neither code set).
    pub affine_source: &'static str,
    /// Voxel indices → world coordinates, 4 rows of 4.
    pub affine: [[f64; 4]; 4],
    pub endianness: &'static str,
    pub vox_offset: f32,
    pub description: String,
    pub voxels: usize,
    /// Over the finite scaled voxels; `null` when there are none.
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub nan_count: usize,
    pub inf_count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Units {
    pub space: &'static str,
    pub time: &'static str,
}

/// Read `path` and summarise it.
pub fn inspect(path: &Path) -> Result<NiftiSummary> {
    Ok(summarise(&read_nifti(path)?))
}

/// Summarise a volume already in memory.
pub fn summarise(vol: &NiftiVolume) -> NiftiSummary {
    let h = &vol.header;
    let ndim = h.dim[0] as usize;
    let (affine_source, affine) = affine(h);
    // Header fields are f32: print them as the shortest decimal that round-trips through f32
    // (0.73, not 0.7300000190734863).
    let affine = affine.map(|row| row.map(|v| (v as f32).to_string().parse().unwrap_or(v)));
    let mut stats = VoxelStats::default();
    for &v in vol.data.iter() {
        stats.add(v);
    }
    let slope_usable = h.scl_slope.is_finite() && h.scl_slope != 0.0;
    NiftiSummary {
        path: vol.path.display().to_string(),
        shape: vol.data.shape().to_vec(),
        datatype: datatype_code_name(h.datatype),
        datatype_code: h.datatype,
        spacing: h.pixdim[1..=ndim].to_vec(),
        units: Units {
            space: space_unit(h.xyzt_units),
            time: time_unit(h.xyzt_units),
        },
        scl_slope: h.scl_slope,
        scl_inter: h.scl_inter,
        scaling_applied: slope_usable,
        qform_code: h.qform_code,
        sform_code: h.sform_code,
        affine_source,
        affine,
        endianness: match h.endianness {
            nifti::Endianness::Little => "little",
            nifti::Endianness::Big => "big",
        },
        vox_offset: h.vox_offset,
        description: String::from_utf8_lossy(&h.descrip)
            .trim_end_matches('\0')
            .trim()
            .to_string(),
        voxels: vol.data.len(),
        min: stats.finite.then_some(stats.min),
        max: stats.finite.then_some(stats.max),
        mean: stats.finite.then(|| stats.sum / stats.count as f64),
        nan_count: stats.nan,
        inf_count: stats.inf,
    }
}

#[derive(Default)]
struct VoxelStats {
    finite: bool,
    min: f64,
    max: f64,
    sum: f64,
    count: usize,
    nan: usize,
    inf: usize,
}

impl VoxelStats {
    fn add(&mut self, v: f64) {
        if v.is_nan() {
            self.nan += 1;
        } else if v.is_infinite() {
            self.inf += 1;
        } else {
            if !self.finite {
                self.finite = true;
                self.min = v;
                self.max = v;
            }
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.sum += v;
            self.count += 1;
        }
    }
}

fn space_unit(xyzt: u8) -> &'static str {
    match xyzt & 0x07 {
        0 => "unknown",
        1 => "m",
        2 => "mm",
        3 => "um",
        _ => "invalid",
    }
}

fn time_unit(xyzt: u8) -> &'static str {
    match xyzt & 0x38 {
        0 => "unknown",
        8 => "s",
        16 => "ms",
        24 => "us",
        32 => "hz",
        40 => "ppm",
        48 => "rad/s",
        _ => "invalid",
    }
}

/// The voxel-to-world affine by the NIfTI-1 rules: the sform when its code is set, else the qform
/// (quaternion, `pixdim` and `qfac`), else a plain scaling by `pixdim`.
pub fn affine(h: &NiftiHeader) -> (&'static str, [[f64; 4]; 4]) {
    let f = |r: [f32; 4]| r.map(|v| v as f64);
    if h.sform_code > 0 {
        return (
            "sform",
            [f(h.srow_x), f(h.srow_y), f(h.srow_z), [0.0, 0.0, 0.0, 1.0]],
        );
    }
    let pix = |i: usize| pixdim_or_one(h, i);
    if h.qform_code > 0 {
        let r = quaternion_rotation(h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let scale = [pix(1), pix(2), qfac * pix(3)];
        let offset = [h.quatern_x, h.quatern_y, h.quatern_z].map(|v| v as f64);
        let mut m = [[0.0; 4]; 4];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] = r[i][j] * scale[j];
            }
            m[i][3] = offset[i];
        }
        m[3][3] = 1.0;
        return ("qform", m);
    }
    (
        "pixdim",
        [
            [pix(1), 0.0, 0.0, 0.0],
            [0.0, pix(2), 0.0, 0.0],
            [0.0, 0.0, pix(3), 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
    )
}

/// Rotation matrix of the unit quaternion (a, b, c, d) with a recovered from b, c, d.
fn quaternion_rotation(b: f64, c: f64, d: f64) -> [[f64; 3]; 3] {
    let mut a2 = 1.0 - (b * b + c * c + d * d);
    let (mut b, mut c, mut d) = (b, c, d);
    if a2 < 1e-7 {
        // A 180° rotation: (b, c, d) is a unit vector up to rounding; renormalise it.
        let n = (b * b + c * c + d * d).sqrt();
        (b, c, d) = (b / n, c / n, d / n);
        a2 = 0.0;
    }
    let a = a2.sqrt();
    [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qform_affine_matches_the_standard_formula() {
        // 90° about z: quaternion (a, b, c, d) = (cos 45°, 0, 0, sin 45°).
        let mut h = NiftiHeader {
            sform_code: 0,
            qform_code: 1,
            quatern_d: std::f32::consts::FRAC_1_SQRT_2,
            quatern_x: 10.0,
            quatern_y: -5.0,
            quatern_z: 2.0,
            ..NiftiHeader::default()
        };
        h.pixdim = [-1.0, 2.0, 3.0, 4.0, 1.0, 1.0, 1.0, 1.0];
        let (source, m) = affine(&h);
        assert_eq!(source, "qform");
        let expect = [
            [0.0, -3.0, 0.0, 10.0],
            [2.0, 0.0, 0.0, -5.0],
            [0.0, 0.0, -4.0, 2.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        for i in 0..4 {
            for j in 0..4 {
                assert!((m[i][j] - expect[i][j]).abs() < 1e-6, "{m:?}");
            }
        }
    }

    #[test]
    fn quaternions_give_the_known_rotations_and_are_orthonormal() {
        let close = |r: [[f64; 3]; 3], e: [[f64; 3]; 3]| {
            (0..3).all(|i| (0..3).all(|j| (r[i][j] - e[i][j]).abs() < 1e-9))
        };
        // 90° about x: (a, b, c, d) = (cos 45°, sin 45°, 0, 0); y → z, z → −y.
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let r = quaternion_rotation(s, 0.0, 0.0);
        assert!(
            close(r, [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
            "{r:?}"
        );
        // 120° about (1, 1, 1): (0.5, 0.5, 0.5, 0.5); x → y → z → x.
        let r = quaternion_rotation(0.5, 0.5, 0.5);
        assert!(
            close(r, [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
            "{r:?}"
        );
        // 180° about z: a = 0, recovered from rounding-level noise.
        let r = quaternion_rotation(0.0, 0.0, 1.0 - 1e-9);
        assert!(
            close(r, [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]),
            "{r:?}"
        );
        // Any unit quaternion: orthonormal with determinant +1.
        let r = quaternion_rotation(0.1, -0.2, 0.3);
        for i in 0..3 {
            for j in 0..3 {
                let dot: f64 = (0..3).map(|k| r[k][i] * r[k][j]).sum();
                assert!(
                    (dot - f64::from(u8::from(i == j))).abs() < 1e-12,
                    "{i},{j}: {dot}"
                );
            }
        }
        let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
            - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
            + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
        assert!((det - 1.0).abs() < 1e-12);
    }

    #[test]
    fn sform_wins_over_qform_and_pixdim_is_the_fallback() {
        let mut h = NiftiHeader {
            sform_code: 2,
            srow_x: [1.0, 0.0, 0.0, 7.0],
            ..NiftiHeader::default()
        };
        assert_eq!(affine(&h).0, "sform");
        assert_eq!(affine(&h).1[0], [1.0, 0.0, 0.0, 7.0]);
        h.sform_code = 0;
        h.qform_code = 0;
        h.pixdim[1] = 0.75;
        let (source, m) = affine(&h);
        assert_eq!(source, "pixdim");
        assert_eq!(m[0][0], 0.75);
    }
}
