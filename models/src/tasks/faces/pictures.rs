//! The ROC plot: TAR against FAR on a logarithmic FAR axis (where the operating points
//! FAR 1e-2 and 1e-3 are readable), one curve per model.

use crate::error::Result;
use crate::plot::{Axes, Curve, line_plot};

use super::metrics::Roc;

/// The PNG bytes of the ROC curves `(name, roc)`, FAR from 1e-4 to 1.
pub fn roc_png(curves: &[(String, &Roc)]) -> Result<Vec<u8>> {
    let points: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|(_, roc)| roc.points.iter().skip(1).map(|p| (p.1, p.2)).collect())
        .collect();
    let curves: Vec<Curve<'_>> = curves
        .iter()
        .zip(&points)
        .map(|((name, _), p)| Curve { name, points: p })
        .collect();
    let axes = Axes {
        title: "roc: held-out subjects",
        x_label: "far",
        y_label: "tar",
        x_range: (1e-4, 1.0),
        y_range: (0.0, 1.0),
        log_x: true,
    };
    line_plot(&axes, &curves).png_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roc_png_decodes() {
        let roc = Roc::new(&[0.1, 0.3], &[0.2, 0.5, 0.9]).unwrap();
        let bytes = roc_png(&[("trained".into(), &roc)]).unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (560, 440));
    }
}
