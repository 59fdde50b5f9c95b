//! Weight layout conversion from TFLite's layouts to Fovea's (Keras's) layouts.
//!
//! | TFLite | shape | Fovea | shape |
//! | --- | --- | --- | --- |
//! | CONV_2D filter, OHWI | `(O, KH, KW, I)` | HWIO | `(KH, KW, I, O)` |
//! | DEPTHWISE_CONV_2D filter, 1HWO | `(1, KH, KW, C*M)` | HWIO, groups = C | `(KH, KW, 1, C*M)` (same order) |
//! | TRANSPOSE_CONV filter, OHWI | `(O, KH, KW, I)` | `(KH, KW, O, I)` | |
//! | FULLY_CONNECTED weights | `(O, I)` | `(I, O)` | |

/// A dense row-major array with its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub data: Vec<f32>,
}

/// Permutes the axes of `a`: output axis `i` is input axis `perm[i]`. `perm` must be a
/// permutation of `0..a.shape.len()` (the callers pass constants).
pub fn transpose(a: &Array, perm: &[usize]) -> Array {
    let rank = a.shape.len();
    let shape: Vec<usize> = perm.iter().map(|&p| a.shape[p]).collect();
    let mut in_strides = vec![1; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * a.shape[i + 1];
    }
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut data = Vec::with_capacity(a.data.len());
    let mut idx = vec![0usize; rank];
    for _ in 0..a.data.len() {
        data.push(a.data[idx.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
        for ax in (0..rank).rev() {
            idx[ax] += 1;
            if idx[ax] < shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    Array { shape, data }
}

/// A CONV_2D filter `(O, KH, KW, I)` as HWIO `(KH, KW, I, O)`.
pub fn conv_filter(ohwi: &Array) -> Array {
    transpose(ohwi, &[1, 2, 3, 0])
}

/// A DEPTHWISE_CONV_2D filter `(1, KH, KW, C*M)` as a grouped HWIO kernel `(KH, KW, 1, C*M)`:
/// the element order is the same, and output channel `c*M + m` reads input channel `c` in both.
pub fn depthwise_filter(one_hwo: &Array) -> Array {
    let s = &one_hwo.shape;
    Array {
        shape: vec![s[1], s[2], 1, s[3]],
        data: one_hwo.data.clone(),
    }
}

/// A TRANSPOSE_CONV (or `Convolution2DTransposeBias`) filter `(O, KH, KW, I)` as Fovea's
/// transposed-conv kernel `(KH, KW, O, I)`.
pub fn transpose_conv_filter(ohwi: &Array) -> Array {
    transpose(ohwi, &[1, 2, 0, 3])
}

/// FULLY_CONNECTED weights `(O, I)` as a dense kernel `(I, O)`.
pub fn dense_kernel(oi: &Array) -> Array {
    transpose(oi, &[1, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(shape: &[usize]) -> Array {
        Array {
            shape: shape.to_vec(),
            data: (0..shape.iter().product::<usize>()).map(|i| i as f32).collect(),
        }
    }

    #[test]
    fn conv_filter_moves_out_channels_last() {
        let (o, kh, kw, i) = (3, 2, 5, 4);
        let a = iota(&[o, kh, kw, i]);
        let b = conv_filter(&a);
        assert_eq!(b.shape, vec![kh, kw, i, o]);
        for (oo, y, x, ii) in (0..o)
            .flat_map(|oo| (0..kh).flat_map(move |y| (0..kw).flat_map(move |x| (0..i).map(move |ii| (oo, y, x, ii)))))
        {
            let src = ((oo * kh + y) * kw + x) * i + ii;
            let dst = ((y * kw + x) * i + ii) * o + oo;
            assert_eq!(b.data[dst], a.data[src]);
        }
    }

    #[test]
    fn transpose_conv_filter_is_hwoi() {
        let (o, kh, kw, i) = (2, 3, 4, 5);
        let a = iota(&[o, kh, kw, i]);
        let b = transpose_conv_filter(&a);
        assert_eq!(b.shape, vec![kh, kw, o, i]);
        for oo in 0..o {
            for y in 0..kh {
                for x in 0..kw {
                    for ii in 0..i {
                        let src = ((oo * kh + y) * kw + x) * i + ii;
                        let dst = ((y * kw + x) * o + oo) * i + ii;
                        assert_eq!(b.data[dst], a.data[src]);
                    }
                }
            }
        }
    }

    #[test]
    fn dense_kernel_transposes_and_depthwise_keeps_order() {
        let a = iota(&[2, 3]);
        assert_eq!(dense_kernel(&a).data, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let d = depthwise_filter(&iota(&[1, 3, 3, 8]));
        assert_eq!(d.shape, vec![3, 3, 1, 8]);
        assert_eq!(d.data[17], 17.0);
    }
}
