//! Index arithmetic emitted as WGSL text: row-major strides, axis merging, and the offset of a
//! linear index into a strided view, with every constant substituted.

/// One axis of a strided view: `(length, stride)` in elements.
pub type Axis = (usize, usize);

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Merges neighbouring axes of a strided view where possible and drops length-1 axes:
/// `axes[i] = (length, stride)`, outermost first. The view's elements keep their order.
pub fn merge_axes(axes: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &(len, stride) in axes.iter().filter(|a| a.0 != 1) {
        match out.last_mut() {
            Some(last) if last.1 == stride * len => *last = (last.0 * len, stride),
            _ => out.push((len, stride)),
        }
    }
    out
}

/// WGSL (u32) for the offset of element `var` of a row-major index space whose axes are
/// `axes[i] = (length, stride)`, outermost first: `sum ((var / s_i) % len_i) * stride_i`, with
/// `s_i` the row-major stride of axis `i`. Axes of stride 0 (broadcast) cost nothing.
pub fn offset_expr(var: &str, axes: &[(usize, usize)]) -> String {
    let lens: Vec<usize> = axes.iter().map(|a| a.0).collect();
    let lin = strides(&lens);
    let mut terms = Vec::new();
    for (i, &(len, stride)) in axes.iter().enumerate() {
        if stride == 0 || len == 1 {
            continue;
        }
        let mut t = if lin[i] == 1 {
            var.to_string()
        } else {
            format!("({var} / {}u)", lin[i])
        };
        if i > 0 {
            t = format!("({t} % {len}u)");
        }
        if stride != 1 {
            t = format!("{t} * {stride}u");
        }
        terms.push(t);
    }
    if terms.is_empty() {
        "0u".to_string()
    } else {
        terms.join(" + ")
    }
}

/// CPU mirror of [`offset_expr`], for tests.
#[cfg(test)]
pub fn offset_of(index: usize, axes: &[(usize, usize)]) -> usize {
    let lens: Vec<usize> = axes.iter().map(|a| a.0).collect();
    let lin = strides(&lens);
    axes.iter()
        .enumerate()
        .map(|(i, &(len, stride))| (index / lin[i]) % len * stride)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_and_offsets() {
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(
            offset_expr("i", &[(2, 12), (3, 4), (4, 1)]),
            "(i / 12u) * 12u + ((i / 4u) % 3u) * 4u + (i % 4u)"
        );
        assert_eq!(offset_expr("i", &[(2, 0), (4, 1)]), "(i % 4u)");
        assert_eq!(offset_expr("i", &[(1, 5)]), "0u");
    }

    #[test]
    fn merging_keeps_the_element_order() {
        // A contiguous (2, 3, 4) view merges to one axis.
        assert_eq!(merge_axes(&[(2, 12), (3, 4), (4, 1)]), vec![(24, 1)]);
        // A transposed view does not.
        let t = [(4, 1), (2, 12), (3, 4)];
        let m = merge_axes(&t);
        for i in 0..24 {
            assert_eq!(offset_of(i, &t), offset_of(i, &m));
        }
        assert_eq!(merge_axes(&[(1, 7), (3, 0), (2, 0)]), vec![(6, 0)]);
    }
}
