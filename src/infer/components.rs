//! Connected components of a 2-D mask, for the optional small-lesion clean-up.

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
}
