//! Mask surfaces and the distances between them, MedPy's way.
//!
//! The surface of a mask is the mask XOR its erosion by the face-connected structuring element
//! (6 neighbours in 3D, 4 in 2D), with voxels outside the array counting as background: a
//! foreground voxel is on the surface when it touches the array's edge or a background voxel
//! across a face. Distances run between voxel centres, scaled by the spacing.
//!
//! Both masks are first cropped to the bounding box of their union. This changes no result: every
//! surface voxel lies inside that box, erosion at the box's edge sees background either way, and
//! the separable distance transform restricted to a box that holds every feature voxel is still
//! exact for the points inside it. Pathology occupies a few percent of a MyoPS slice, so the crop
//! is what makes a 512×512 volume cheap.

use ndarray::{ArrayD, ArrayViewD, Axis, Slice};

use super::edt::distance_to_features;

/// The surface of `mask`: foreground voxels with a face neighbour outside the mask or the array.
pub fn surface(mask: ArrayViewD<'_, bool>) -> ArrayD<bool> {
    let mut eroded = mask.to_owned();
    for axis in 0..mask.ndim() {
        let n = mask.len_of(Axis(axis));
        if n >= 2 {
            eroded
                .slice_axis_mut(Axis(axis), Slice::from(1..))
                .zip_mut_with(
                    &mask.slice_axis(Axis(axis), Slice::from(..n - 1)),
                    |e, &m| *e &= m,
                );
            eroded
                .slice_axis_mut(Axis(axis), Slice::from(..n - 1))
                .zip_mut_with(&mask.slice_axis(Axis(axis), Slice::from(1..)), |e, &m| {
                    *e &= m
                });
        }
        if n >= 1 {
            eroded.index_axis_mut(Axis(axis), 0).fill(false);
            eroded.index_axis_mut(Axis(axis), n - 1).fill(false);
        }
    }
    eroded.zip_mut_with(&mask, |e, &m| *e = m && !*e);
    eroded
}

/// Distances from each surface voxel of `from` to the nearest surface voxel of `to`, in spacing
/// units, in the arrays' logical (row-major) order. Both directions at once, since they share
/// the crop: `(from → to, to → from)`. Empty when a mask is empty.
pub fn directed_surface_distances(
    from: ArrayViewD<'_, bool>,
    to: ArrayViewD<'_, bool>,
    spacing: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(from.shape(), to.shape(), "masks must share a shape");
    let Some(bounds) = union_bounds(&from, &to) else {
        return (Vec::new(), Vec::new());
    };
    let (mut from, mut to) = (from, to);
    for (axis, &(lo, hi)) in bounds.iter().enumerate() {
        from.slice_axis_inplace(Axis(axis), Slice::from(lo..hi));
        to.slice_axis_inplace(Axis(axis), Slice::from(lo..hi));
    }
    let (from_surface, to_surface) = (surface(from.view()), surface(to.view()));
    if !from_surface.iter().any(|&s| s) || !to_surface.iter().any(|&s| s) {
        return (Vec::new(), Vec::new());
    }
    let sample = |field: &ArrayD<f64>, at: &ArrayD<bool>| -> Vec<f64> {
        field
            .iter()
            .zip(at.iter())
            .filter_map(|(&d, &s)| s.then_some(d))
            .collect()
    };
    let to_field = distance_to_features(to_surface.view(), spacing);
    let from_field = distance_to_features(from_surface.view(), spacing);
    (
        sample(&to_field, &from_surface),
        sample(&from_field, &to_surface),
    )
}

/// Per axis, the half-open index range holding every foreground voxel of either mask.
fn union_bounds(a: &ArrayViewD<'_, bool>, b: &ArrayViewD<'_, bool>) -> Option<Vec<(usize, usize)>> {
    let shape = a.shape().to_vec();
    let ndim = shape.len();
    if ndim == 0 || shape.contains(&0) {
        return None;
    }
    let (a, b) = (a.as_standard_layout(), b.as_standard_layout());
    let (a, b) = (a.as_slice()?, b.as_slice()?);
    let row_len = shape[ndim - 1];
    let mut lo = vec![usize::MAX; ndim];
    let mut hi = vec![0; ndim];
    // Walk rows along the last axis, keeping the outer index as an odometer: one pass, no
    // per-voxel index allocation.
    let mut outer = vec![0usize; ndim - 1];
    for (ra, rb) in a.chunks(row_len).zip(b.chunks(row_len)) {
        let hit = |i: &usize| ra[*i] || rb[*i];
        if let Some(first) = (0..row_len).find(hit) {
            let last = (0..row_len)
                .rev()
                .find(hit)
                .expect("a first hit implies a last");
            for (axis, &i) in outer.iter().enumerate() {
                lo[axis] = lo[axis].min(i);
                hi[axis] = hi[axis].max(i + 1);
            }
            lo[ndim - 1] = lo[ndim - 1].min(first);
            hi[ndim - 1] = hi[ndim - 1].max(last + 1);
        }
        for axis in (0..ndim - 1).rev() {
            outer[axis] += 1;
            if outer[axis] < shape[axis] {
                break;
            }
            outer[axis] = 0;
        }
    }
    (lo[0] != usize::MAX).then(|| lo.into_iter().zip(hi).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn mask(shape: &[usize], on: &[&[usize]]) -> ArrayD<bool> {
        let mut m = ArrayD::from_elem(IxDyn(shape), false);
        for &i in on {
            m[i] = true;
        }
        m
    }

    #[test]
    fn surface_is_mask_minus_face_erosion() {
        // A 3×3 square inside a 5×5 grid: every voxel but the centre is on the surface.
        let square: Vec<[usize; 2]> = (1..4).flat_map(|r| (1..4).map(move |c| [r, c])).collect();
        let refs: Vec<&[usize]> = square.iter().map(|i| i.as_slice()).collect();
        let s = surface(mask(&[5, 5], &refs).view());
        assert_eq!(s.iter().filter(|&&v| v).count(), 8);
        assert!(!s[[2, 2]]);
        // Filling the array: outside counts as background, so only the centre is interior.
        let full = ArrayD::from_elem(IxDyn(&[3, 3]), true);
        assert_eq!(surface(full.view()).iter().filter(|&&v| v).count(), 8);
        let thin = ArrayD::from_elem(IxDyn(&[2, 3]), true);
        assert!(surface(thin.view()).iter().all(|&v| v));
        // A plus shape: the centre has four foreground faces and is interior.
        let plus = mask(&[3, 3], &[&[0, 1], &[1, 0], &[1, 1], &[1, 2], &[2, 1]]);
        let s = surface(plus.view());
        assert_eq!(s.iter().filter(|&&v| v).count(), 4);
        assert!(!s[[1, 1]]);
        // A single slice in 3-D: every voxel touches the array's edge along z.
        let slab = ArrayD::from_elem(IxDyn(&[4, 4, 1]), true);
        assert!(surface(slab.view()).iter().all(|&v| v));
    }

    #[test]
    fn crop_does_not_change_distances() {
        let a = mask(&[6, 40], &[&[1, 30], &[2, 30], &[2, 31]]);
        let b = mask(&[6, 40], &[&[4, 33], &[4, 34]]);
        let (ab, ba) = directed_surface_distances(a.view(), b.view(), &[1.5, 0.7]);
        let full = |from: &ArrayD<bool>, to: &ArrayD<bool>| -> Vec<f64> {
            let field = distance_to_features(surface(to.view()).view(), &[1.5, 0.7]);
            let s = surface(from.view());
            field
                .iter()
                .zip(s.iter())
                .filter_map(|(&d, &on)| on.then_some(d))
                .collect()
        };
        assert_eq!(ab, full(&a, &b));
        assert_eq!(ba, full(&b, &a));
    }
}
