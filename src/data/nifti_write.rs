//! Writing volumes as NIfTI-1, atomically.
//!
//! Outputs inherit the geometry of a reference header (dims, pixdim, qform and sform, units), so a
//! prediction overlays its input in ITK-SNAP or 3D Slicer. The file is gzipped when its name ends
//! in `.gz`. Every write goes through [`crate::atomic`].

use std::path::Path;

use ndarray::Array3;
use nifti::writer::WriterOptions;
use nifti::NiftiHeader;

use crate::atomic;
use crate::error::{Error, Result};

/// Write `data` as int16 with the geometry of `reference`.
pub fn write_i16(path: &Path, data: &Array3<i16>, reference: &NiftiHeader) -> Result<()> {
    let header = header_for(path, data.shape(), reference)?;
    atomic::write_with(path, |tmp| {
        WriterOptions::new(tmp)
            .reference_header(&header)
            .write_nifti(data)
            .map_err(std::io::Error::other)
    })
}

/// Write `data` as float32 with the geometry of `reference` (maps such as an ensemble's
/// agreement).
pub fn write_f32(path: &Path, data: &Array3<f32>, reference: &NiftiHeader) -> Result<()> {
    let mut header = header_for(path, data.shape(), reference)?;
    // Stored values are the fractions themselves.
    header.scl_slope = 1.0;
    header.scl_inter = 0.0;
    atomic::write_with(path, |tmp| {
        WriterOptions::new(tmp)
            .reference_header(&header)
            .write_nifti(data)
            .map_err(std::io::Error::other)
    })
}

/// The header a volume of `shape` is written with: `reference`'s geometry, checked against the
/// file name and the shape.
fn header_for(path: &Path, shape: &[usize], reference: &NiftiHeader) -> Result<NiftiHeader> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if !(name.ends_with(".nii") || name.ends_with(".nii.gz")) {
        return Err(Error::invalid(
            "output file",
            format!("{} must end in .nii or .nii.gz", path.display()),
        ));
    }
    let ndim = reference.dim[0] as usize;
    let ref_shape: Vec<usize> = reference.dim[1..=ndim.clamp(1, 7)]
        .iter()
        .map(|&d| d as usize)
        .collect();
    let spatial_match = shape.iter().enumerate().all(|(i, &n)| {
        // A reference with fewer axes has an implicit size of 1 on the others.
        ref_shape.get(i).copied().unwrap_or(1) == n
    }) && ref_shape.iter().skip(3).all(|&d| d == 1);
    if !spatial_match {
        return Err(Error::invalid(
            "volume shape",
            format!(
                "{shape:?} does not match the reference header's dims {ref_shape:?} (writing {})",
                path.display()
            ),
        ));
    }
    let mut header = reference.clone();
    // The reference's display window belongs to its intensities, not to these values.
    header.cal_min = 0.0;
    header.cal_max = 0.0;
    Ok(header)
}

/// Write a MyoPS label map (codes 0–2221, stored as int16) with the source case's geometry.
pub fn write_labels(path: &Path, labels: &Array3<u16>, reference: &NiftiHeader) -> Result<()> {
    if let Some(&bad) = labels.iter().find(|&&c| c > i16::MAX as u16) {
        return Err(Error::invalid(
            "label map",
            format!("code {bad} does not fit int16 (writing {})", path.display()),
        ));
    }
    write_i16(path, &labels.mapv(|c| c as i16), reference)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::inspect::affine;
    use crate::data::nifti_read::read_nifti;

    fn oblique_header(shape: [u16; 3]) -> NiftiHeader {
        NiftiHeader {
            dim: [3, shape[0], shape[1], shape[2], 1, 1, 1, 1],
            pixdim: [-1.0, 0.75, 0.8, 12.0, 1.0, 1.0, 1.0, 1.0],
            datatype: 4,
            bitpix: 16,
            xyzt_units: 10,
            qform_code: 1,
            sform_code: 2,
            quatern_b: 0.1,
            quatern_c: -0.2,
            quatern_d: 0.3,
            quatern_x: -100.0,
            quatern_y: 50.0,
            quatern_z: 20.0,
            srow_x: [0.7, 0.1, 0.5, -100.0],
            srow_y: [-0.1, 0.78, 2.0, 50.0],
            srow_z: [0.05, -0.02, 11.8, 20.0],
            ..NiftiHeader::default()
        }
    }

    #[test]
    fn labels_round_trip_with_voxels_and_affine() {
        let dir = tempfile::tempdir().unwrap();
        let codes = [0u16, 200, 500, 600, 1220, 2221];
        let labels = Array3::from_shape_fn((5, 4, 3), |(x, y, z)| codes[(x + 2 * y + 3 * z) % 6]);
        let with_sform = oblique_header([5, 4, 3]);
        // Without an sform the affine comes from the qform: that path must survive too.
        let qform_only = NiftiHeader {
            sform_code: 0,
            ..with_sform.clone()
        };
        let cases = [
            ("pred.nii.gz", &with_sform),
            ("pred.nii", &with_sform),
            ("case.v2.NII.GZ", &qform_only),
        ];
        for (name, header) in cases {
            let header = header.clone();
            let path = dir.path().join(name);
            write_labels(&path, &labels, &header).unwrap();
            let back = read_nifti(&path).unwrap();
            assert_eq!(back.data.shape(), &[5, 4, 3]);
            for ((x, y, z), &c) in labels.indexed_iter() {
                assert_eq!(back.data[[x, y, z]], c as f64, "{name} at {x},{y},{z}");
            }
            assert_eq!(affine(&back.header), affine(&header), "{name}");
            assert_eq!(back.header.qform_code, 1);
            assert_eq!(back.header.sform_code, header.sform_code);
            let quatern = |h: &NiftiHeader| {
                [
                    h.quatern_b,
                    h.quatern_c,
                    h.quatern_d,
                    h.quatern_x,
                    h.quatern_y,
                    h.quatern_z,
                ]
            };
            assert_eq!(quatern(&back.header), quatern(&header), "{name}");
            assert_eq!(back.header.pixdim[..4], header.pixdim[..4]);
            assert_eq!(back.header.datatype, 4, "int16");
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn only_nifti_names_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pred.img");
        let err =
            write_labels(&path, &Array3::zeros((5, 4, 3)), &oblique_header([5, 4, 3])).unwrap_err();
        assert!(
            err.to_string().contains("must end in .nii or .nii.gz"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_shape_that_does_not_match_the_reference_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pred.nii.gz");
        let err =
            write_labels(&path, &Array3::zeros((5, 4, 2)), &oblique_header([5, 4, 3])).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        assert!(!path.exists());
    }
}
