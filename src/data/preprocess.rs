//! Slice-level preprocessing: the pure geometry and intensity steps between a MyoPS volume and a
//! network input, and their inverses for putting predictions back.
//!
//! Conventions:
//! - A slice is an `Array2` indexed like the volume it came from, `[x, y]`; the model sees axis 0
//!   as height and axis 1 as width.
//! - Resizing samples at pixel centres (`src = (dst + 0.5)·scale − 0.5`, the convention of OpenCV
//!   and PyTorch's `align_corners=False`), clamped at the border: bilinear for images, nearest for
//!   labels. Nearest resizing by an integer factor and back is exact.
//! - A centre crop or pad keeps the centre: when the size difference is odd, the extra row is cut
//!   from, or padded at, the far side (index n − 1), as torchvision and MONAI pad. Crop and pad
//!   are one operation ([`CenterWindow`]).
//! - ROI boxes are half-open `[x0, x1) × [y0, y1)` in the coordinates of the slice they were found
//!   in.

use ndarray::{s, Array2, Array3, ArrayView2, Axis};

/// The slices of a volume `[x, y, z]`, in z order.
pub fn slices<T: Clone>(volume: &Array3<T>) -> Vec<Array2<T>> {
    volume.axis_iter(Axis(2)).map(|s| s.to_owned()).collect()
}

/// Stack slices back into a volume `[x, y, z]`; all slices must share a shape.
pub fn stack_slices<T: Clone>(slices: &[Array2<T>]) -> Option<Array3<T>> {
    let views: Vec<_> = slices
        .iter()
        .map(|s| s.view().insert_axis(Axis(2)))
        .collect();
    ndarray::concatenate(Axis(2), &views).ok()
}

/// Z-score one slice: zero mean, unit standard deviation. A constant slice becomes all zeros.
pub fn normalize_slice(img: ArrayView2<f32>) -> Array2<f32> {
    let n = img.len().max(1) as f64;
    let mean = img.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = img.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    if std < 1e-6 {
        return Array2::zeros(img.raw_dim());
    }
    img.mapv(|v| ((v as f64 - mean) / std) as f32)
}

/// A centred crop or pad from `src` size to `dst` size, per axis (crop on one axis and pad on the
/// other is fine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CenterWindow {
    pub src: [usize; 2],
    pub dst: [usize; 2],
}

impl CenterWindow {
    pub fn new(src: [usize; 2], dst: [usize; 2]) -> Self {
        CenterWindow { src, dst }
    }

    /// Where destination index 0 falls in the source, per axis (negative when padding).
    fn start(&self, axis: usize) -> isize {
        let (src, dst) = (self.src[axis] as isize, self.dst[axis] as isize);
        // Truncating division: ⌊diff/2⌋ when cropping, −⌊|diff|/2⌋ when padding, so an odd
        // remainder always lands at the far side.
        (src - dst) / 2
    }

    /// Crop/pad `img` (of size `src`) to `dst`, filling padding with `fill`.
    pub fn apply<T: Clone>(&self, img: ArrayView2<T>, fill: T) -> Array2<T> {
        debug_assert_eq!(img.shape(), self.src);
        shift(img, self.dst, [self.start(0), self.start(1)], fill)
    }

    /// Map `img` (of size `dst`) back to size `src`: what was cropped away becomes `fill`.
    pub fn invert<T: Clone>(&self, img: ArrayView2<T>, fill: T) -> Array2<T> {
        debug_assert_eq!(img.shape(), self.dst);
        shift(img, self.src, [-self.start(0), -self.start(1)], fill)
    }
}

/// An array of `size` whose `(i, j)` is `img[i + start0, j + start1]`, or `fill` outside `img`.
fn shift<T: Clone>(img: ArrayView2<T>, size: [usize; 2], start: [isize; 2], fill: T) -> Array2<T> {
    let (n0, n1) = (img.nrows() as isize, img.ncols() as isize);
    Array2::from_shape_fn((size[0], size[1]), |(i, j)| {
        let (a, b) = (i as isize + start[0], j as isize + start[1]);
        if (0..n0).contains(&a) && (0..n1).contains(&b) {
            img[[a as usize, b as usize]].clone()
        } else {
            fill.clone()
        }
    })
}

/// Centre crop or pad `img` to `size`.
pub fn center_crop_pad<T: Clone>(img: ArrayView2<T>, size: [usize; 2], fill: T) -> Array2<T> {
    CenterWindow::new([img.nrows(), img.ncols()], size).apply(img, fill)
}

/// A half-open box `[x0, x1) × [y0, y1)` in slice coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoiBox {
    pub x0: usize,
    pub x1: usize,
    pub y0: usize,
    pub y1: usize,
}

impl RoiBox {
    pub fn size(&self) -> [usize; 2] {
        [self.x1 - self.x0, self.y1 - self.y0]
    }

    /// Grow the shorter side so the box is square (keeping its centre where the slice allows),
    /// so resizing to a square network input does not distort the anatomy.
    pub fn squared(self, shape: [usize; 2]) -> RoiBox {
        let side = self.size()[0].max(self.size()[1]);
        let fit = |lo: usize, hi: usize, n: usize| -> (usize, usize) {
            let side = side.min(n);
            let grow = side - (hi - lo);
            let lo = lo.saturating_sub(grow / 2);
            let lo = lo.min(n - side);
            (lo, lo + side)
        };
        let (x0, x1) = fit(self.x0, self.x1, shape[0]);
        let (y0, y1) = fit(self.y0, self.y1, shape[1]);
        RoiBox { x0, x1, y0, y1 }
    }

    /// The box's content.
    pub fn extract<T: Clone>(&self, img: ArrayView2<T>) -> Array2<T> {
        img.slice(s![self.x0..self.x1, self.y0..self.y1]).to_owned()
    }

    /// Resize `roi` (nearest) to the box and place it into a slice of `shape` filled with `fill`.
    pub fn paste<T: Copy>(&self, roi: ArrayView2<T>, shape: [usize; 2], fill: T) -> Array2<T> {
        let fitted = resize_nearest(roi, self.size());
        let mut out = Array2::from_elem((shape[0], shape[1]), fill);
        out.slice_mut(s![self.x0..self.x1, self.y0..self.y1])
            .assign(&fitted);
        out
    }
}

/// The bounding box of the non-zero pixels of `mask`, grown by `margin` pixels on each side and
/// clamped to the slice; `None` for an empty mask.
pub fn roi_box(mask: ArrayView2<u8>, margin: usize) -> Option<RoiBox> {
    let mut b: Option<RoiBox> = None;
    for ((x, y), &v) in mask.indexed_iter() {
        if v == 0 {
            continue;
        }
        let r = b.get_or_insert(RoiBox {
            x0: x,
            x1: x + 1,
            y0: y,
            y1: y + 1,
        });
        r.x0 = r.x0.min(x);
        r.x1 = r.x1.max(x + 1);
        r.y0 = r.y0.min(y);
        r.y1 = r.y1.max(y + 1);
    }
    b.map(|r| RoiBox {
        x0: r.x0.saturating_sub(margin),
        x1: (r.x1 + margin).min(mask.nrows()),
        y0: r.y0.saturating_sub(margin),
        y1: (r.y1 + margin).min(mask.ncols()),
    })
}

/// Source coordinate sampled by destination index `i` (pixel-centre convention).
fn source_coord(i: usize, src: usize, dst: usize) -> f64 {
    (i as f64 + 0.5) * (src as f64 / dst as f64) - 0.5
}

/// Bilinear resize of an image to `size`.
pub fn resize_bilinear(img: ArrayView2<f32>, size: [usize; 2]) -> Array2<f32> {
    let (n0, n1) = (img.nrows(), img.ncols());
    let taps = |dst: usize, src: usize| -> Vec<(usize, usize, f32)> {
        (0..dst)
            .map(|i| {
                let c = source_coord(i, src, dst).clamp(0.0, (src - 1) as f64);
                let lo = c.floor() as usize;
                let hi = (lo + 1).min(src - 1);
                (lo, hi, (c - lo as f64) as f32)
            })
            .collect()
    };
    let (t0, t1) = (taps(size[0], n0), taps(size[1], n1));
    Array2::from_shape_fn((size[0], size[1]), |(i, j)| {
        let (a0, a1, wa) = t0[i];
        let (b0, b1, wb) = t1[j];
        let top = img[[a0, b0]] * (1.0 - wb) + img[[a0, b1]] * wb;
        let bottom = img[[a1, b0]] * (1.0 - wb) + img[[a1, b1]] * wb;
        top * (1.0 - wa) + bottom * wa
    })
}

/// Nearest-neighbour resize (for label maps and masks) to `size`.
pub fn resize_nearest<T: Copy>(img: ArrayView2<T>, size: [usize; 2]) -> Array2<T> {
    let (n0, n1) = (img.nrows(), img.ncols());
    let pick = |i: usize, src: usize, dst: usize| {
        (((i as f64 + 0.5) * src as f64 / dst as f64).floor() as usize).min(src - 1)
    };
    Array2::from_shape_fn((size[0], size[1]), |(i, j)| {
        img[[pick(i, n0, size[0]), pick(j, n1, size[1])]]
    })
}

/// The whole path from an original slice to a network's ROI input, and back.
///
/// Forward: centre crop/pad to `window.dst`, cut `roi` out of the crop, resize to `input`.
/// Backward: a label map of size `input` is resized to the ROI (nearest), pasted into the crop, and
/// un-cropped to the original slice; everything outside the ROI is background (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoiGeometry {
    pub window: CenterWindow,
    pub roi: RoiBox,
    pub input: [usize; 2],
}

impl RoiGeometry {
    pub fn image(&self, slice: ArrayView2<f32>) -> Array2<f32> {
        let crop = self.window.apply(slice, 0.0);
        resize_bilinear(self.roi.extract(crop.view()).view(), self.input)
    }

    pub fn labels<T: Copy + Default>(&self, slice: ArrayView2<T>) -> Array2<T> {
        let crop = self.window.apply(slice, T::default());
        resize_nearest(self.roi.extract(crop.view()).view(), self.input)
    }

    pub fn restore<T: Copy + Default>(&self, prediction: ArrayView2<T>) -> Array2<T> {
        let crop = self.roi.paste(prediction, self.window.dst, T::default());
        self.window.invert(crop.view(), T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn slices_and_stack_are_inverse() {
        let v = Array3::from_shape_fn((3, 2, 4), |(x, y, z)| x * 100 + y * 10 + z);
        let s = slices(&v);
        assert_eq!(s.len(), 4);
        assert_eq!(s[2][[1, 1]], 112);
        assert_eq!(stack_slices(&s).unwrap(), v);
    }

    #[test]
    fn normalized_slice_has_zero_mean_unit_std_and_constants_become_zero() {
        let img = array![[1.0f32, 2.0], [3.0, 10.0]];
        let n = normalize_slice(img.view());
        let mean: f32 = n.iter().sum::<f32>() / 4.0;
        let var: f32 = n.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{n:?}");
        let flat = Array2::from_elem((3, 3), 7.0f32);
        assert!(normalize_slice(flat.view()).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn center_crop_and_pad_follow_the_documented_offsets() {
        let img = Array2::from_shape_fn((5, 4), |(i, j)| (i * 10 + j) as i32);
        // Crop 5×4 → 3×2: rows 1..4, cols 1..3.
        assert_eq!(
            center_crop_pad(img.view(), [3, 2], -1),
            array![[11, 12], [21, 22], [31, 32]]
        );
        // Pad 5×4 → 6×7: the odd extra row/column goes at the far side. Axis 0: 0 before, 1
        // after; axis 1: 1 before, 2 after.
        let padded = center_crop_pad(img.view(), [6, 7], -1);
        assert_eq!(padded.row(0).to_vec(), [-1, 0, 1, 2, 3, -1, -1]);
        assert_eq!(padded.row(4).to_vec(), [-1, 40, 41, 42, 43, -1, -1]);
        assert!(padded.row(5).iter().all(|&v| v == -1));
        // Crop 5×4 → 4×1: one row from the far side on axis 0; ⌊3/2⌋ = 1 before on axis 1.
        let cropped = center_crop_pad(img.view(), [4, 1], -1);
        assert_eq!(cropped.column(0).to_vec(), [1, 11, 21, 31]);
        // Invert: back to the original exactly when nothing was cropped.
        let w = CenterWindow::new([5, 4], [6, 7]);
        assert_eq!(w.invert(padded.view(), -1), img);
        // Invert after cropping: the cropped-away border becomes fill.
        let w = CenterWindow::new([5, 4], [3, 2]);
        let back = w.invert(w.apply(img.view(), -1).view(), -1);
        assert_eq!(back[[0, 0]], -1);
        assert_eq!(back[[2, 2]], 22);
    }

    #[test]
    fn roi_box_wraps_the_mask_with_margin_clamped_to_the_slice() {
        let mut m = Array2::<u8>::zeros((10, 12));
        m[[3, 4]] = 1;
        m[[5, 9]] = 1;
        let b = roi_box(m.view(), 2).unwrap();
        assert_eq!(
            b,
            RoiBox {
                x0: 1,
                x1: 8,
                y0: 2,
                y1: 12
            }
        );
        assert_eq!(roi_box(Array2::<u8>::zeros((4, 4)).view(), 2), None);
        let sq = b.squared([10, 12]);
        assert_eq!(sq.size(), [10, 10]);
        assert!(
            sq.x0 <= b.x0 && sq.x1 >= b.x1 && sq.y0 <= b.y0 && sq.y1 >= b.y1,
            "{sq:?}"
        );
    }

    #[test]
    fn bilinear_resize_keeps_constants_and_interpolates_ramps() {
        let flat = Array2::from_elem((7, 5), 3.5f32);
        assert!(resize_bilinear(flat.view(), [13, 2])
            .iter()
            .all(|&v| (v - 3.5).abs() < 1e-6));
        // 2 → 4 along a ramp [0, 1]: centres at −0.25, 0.25, 0.75, 1.25 → clamp → 0, .25, .75, 1.
        let ramp = array![[0.0f32, 1.0]];
        let up = resize_bilinear(ramp.view(), [1, 4]);
        assert_eq!(up.row(0).to_vec(), vec![0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn nearest_resize_up_and_down_by_an_integer_factor_is_exact() {
        let labels = Array2::from_shape_fn((4, 6), |(i, j)| ((i * 7 + j * 3) % 5) as u16);
        let up = resize_nearest(labels.view(), [12, 18]);
        assert_eq!(up[[5, 10]], labels[[1, 3]]);
        assert_eq!(resize_nearest(up.view(), [4, 6]), labels);
    }

    #[test]
    fn roi_geometry_round_trips_labels_inside_the_roi() {
        let labels = Array2::from_shape_fn((20, 16), |(x, y)| {
            if (6..14).contains(&x) && (5..13).contains(&y) {
                if x < 10 {
                    200u16
                } else {
                    2221
                }
            } else {
                0
            }
        });
        let window = CenterWindow::new([20, 16], [18, 18]);
        let crop = window.apply(labels.view(), 0);
        let mask = crop.mapv(|c| u8::from(c != 0));
        let roi = roi_box(mask.view(), 1).unwrap().squared([18, 18]);
        assert_eq!(roi.size(), [10, 10]);
        let geo = RoiGeometry {
            window,
            roi,
            input: [20, 20],
        };
        let net_in = geo.labels(labels.view());
        assert_eq!(net_in.shape(), &[20, 20]);
        assert_eq!(geo.restore(net_in.view()), labels);
        let img = labels.mapv(|c| c as f32);
        assert_eq!(geo.image(img.view()).shape(), &[20, 20]);
    }
}
