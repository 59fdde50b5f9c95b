//! Dispatch geometry shared by the one-invocation-per-element kernels: a linear index folded
//! into a 2-D grid of workgroups, since each grid dimension is limited (65535 in WebGPU).

use crate::Target;

/// A 2-D grid of 1-D workgroups covering `total` invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearGrid {
    /// Workgroup counts to dispatch.
    pub workgroups: [u32; 3],
    /// Invocations per workgroup (along x).
    pub workgroup_size: u32,
    /// Invocations in one grid row (`workgroups[0] * workgroup_size`): the linear index is
    /// `gid.x + gid.y * row`.
    pub row: u32,
}

impl LinearGrid {
    /// The grid for `total` invocations of `workgroup_size` each, or `None` if it does not fit the
    /// target (or the index overflows `u32`). `x = min(groups, max)`, `y = ceil(groups / x)`.
    pub fn new(total: u64, workgroup_size: u32, target: &Target) -> Option<Self> {
        let total = total.max(1);
        let max = target.max_workgroups_per_dim.max(1) as u64;
        let groups = total.div_ceil(workgroup_size as u64);
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        let row = x * workgroup_size as u64;
        if y > max || row * y > u32::MAX as u64 {
            return None;
        }
        Some(LinearGrid {
            workgroups: [x as u32, y as u32, 1],
            workgroup_size,
            row: row as u32,
        })
    }

    /// The WGSL expression of the linear index of invocation `gid` (a `vec3<u32>`).
    pub fn index_expr(&self, gid: &str) -> String {
        if self.workgroups[1] == 1 {
            format!("{gid}.x")
        } else {
            format!("{gid}.x + {gid}.y * {}u", self.row)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_large_dispatches_into_two_dimensions() {
        let t = Target::cpu();
        let g = LinearGrid::new(100, 256, &t).unwrap();
        assert_eq!(g.workgroups, [1, 1, 1]);
        let total = 65535u64 * 256 * 3 + 1;
        let g = LinearGrid::new(total, 256, &t).unwrap();
        assert_eq!(g.workgroups, [65535, 4, 1]);
        assert!(g.workgroups.iter().map(|&d| d as u64).product::<u64>() * 256 >= total);
        assert!(LinearGrid::new(1 << 40, 256, &t).is_none());
    }
}
