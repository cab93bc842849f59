//! Connected components of a 2-D mask: for the optional small-lesion clean-up, and for the
//! optional largest-component filter on the coarse LV mask before its ROI box is taken.

use ndarray::Array2;

/// Components of `mask` (8-connected), each as its pixel list, in scan order.
pub fn components(mask: &Array2<bool>) -> Vec<Vec<(usize, usize)>> {
    let (h, w) = mask.dim();
    let mut seen = Array2::from_elem((h, w), false);
    let mut out = Vec::new();
    for start in mask.indexed_iter().filter(|(_, &m)| m).map(|(i, _)| i) {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let mut pixels = Vec::new();
        while let Some((y, x)) = stack.pop() {
            pixels.push((y, x));
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (ny, nx) = (y as i64 + dy, x as i64 + dx);
                    if ny < 0 || nx < 0 || ny >= h as i64 || nx >= w as i64 {
                        continue;
                    }
                    let n = (ny as usize, nx as usize);
                    if mask[n] && !seen[n] {
                        seen[n] = true;
                        stack.push(n);
                    }
                }
            }
        }
        out.push(pixels);
    }
    out
}

/// `mask` with every non-zero pixel outside its largest 8-connected component set to 0 (ties:
/// the component met first in scan order). A mask with nothing set comes back unchanged.
pub fn keep_largest(mask: &Array2<u8>) -> Array2<u8> {
    let parts = components(&mask.mapv(|v| v != 0));
    let Some(largest) = parts
        .iter()
        .enumerate()
        .max_by_key(|(i, p)| (p.len(), std::cmp::Reverse(*i)))
        .map(|(_, p)| p)
    else {
        return mask.clone();
    };
    let mut kept = Array2::zeros(mask.dim());
    for &at in largest {
        kept[at] = mask[at];
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn diagonal_neighbours_join_and_gaps_split() {
        let mask = array![
            [true, false, false, true],
            [false, true, false, true],
            [false, false, false, false],
            [true, true, false, false],
        ];
        let sizes: Vec<usize> = components(&mask).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 2]);
    }

    #[test]
    fn keep_largest_drops_the_stray_blob_and_keeps_labels() {
        let mask = array![
            [1u8, 0, 0, 0, 0],
            [0, 0, 0, 2, 2],
            [0, 0, 0, 1, 2],
            [3, 0, 0, 0, 0],
        ];
        let kept = keep_largest(&mask);
        assert_eq!(
            kept,
            array![
                [0u8, 0, 0, 0, 0],
                [0, 0, 0, 2, 2],
                [0, 0, 0, 1, 2],
                [0, 0, 0, 0, 0],
            ]
        );
        // Ties go to the first in scan order; an empty mask stays empty.
        assert_eq!(keep_largest(&array![[1u8, 0, 1]]), array![[1u8, 0, 0]]);
        assert_eq!(keep_largest(&array![[0u8, 0]]), array![[0u8, 0]]);
    }
}
