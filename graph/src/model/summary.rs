//! `Model::summary()`: Keras 3's table of layers, output shapes and parameter counts.

use super::Model;

/// Groups digits by thousands: `122570` -> `122,570`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes in Keras's style: `478.79 KB` (powers of 1024).
pub fn readable_bytes(bytes: usize) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", units[u])
}

fn shape_with_batch(shape: &[usize]) -> String {
    let mut parts = vec!["None".to_string()];
    parts.extend(shape.iter().map(|d| d.to_string()));
    format!("({})", parts.join(", "))
}

struct Table {
    widths: Vec<usize>,
    right: Vec<bool>,
    out: String,
}

impl Table {
    fn rule(&mut self, l: char, fill: char, mid: char, r: char) {
        self.out.push(l);
        for (i, w) in self.widths.iter().enumerate() {
            self.out.extend(std::iter::repeat_n(fill, w + 2));
            self.out.push(if i + 1 == self.widths.len() { r } else { mid });
        }
        self.out.push('\n');
    }

    fn row(&mut self, cells: &[String], sep: char) {
        self.out.push(sep);
        for (i, c) in cells.iter().enumerate() {
            let w = self.widths[i];
            let cell = if self.right[i] {
                format!(" {c:>w$} ")
            } else {
                format!(" {c:<w$} ")
            };
            self.out.push_str(&cell);
            self.out.push(sep);
        }
        self.out.push('\n');
    }
}

impl Model {
    /// The Keras-style summary: one row per layer (name and class, output shape, parameter
    /// count; for functional models also the layers each reads), then the totals.
    pub fn summary(&self) -> String {
        let functional = !self.is_sequential();
        let mut header = vec!["Layer (type)".to_string(), "Output Shape".into(), "Param #".into()];
        if functional {
            header.push("Connected to".into());
        }
        let mut rows: Vec<Vec<String>> = Vec::new();
        for (l, info) in self.layers().iter().zip(self.layer_info()) {
            let is_input = l.layer.input_shape().is_some();
            if is_input && !functional {
                continue;
            }
            let mut row = vec![
                format!("{} ({})", l.name, l.layer.class_name()),
                shape_with_batch(&info.output_shape),
                thousands(info.params),
            ];
            if functional {
                let conns: Vec<String> = l
                    .inputs
                    .iter()
                    .map(|&i| format!("{}[0][0]", self.layers()[i].name))
                    .collect();
                row.push(if conns.is_empty() { "-".into() } else { conns.join(", ") });
            }
            rows.push(row);
        }
        let mins = [31, 22, 13, 21];
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].chars().count())
                    .chain([header[c].len(), mins[c]])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut right = vec![false, false, true];
        if functional {
            right.push(false);
        }
        let mut t = Table {
            widths,
            right,
            out: format!("Model: \"{}\"\n", self.name()),
        };
        t.rule('┏', '━', '┳', '┓');
        t.row(&header, '┃');
        t.rule('┡', '━', '╇', '┩');
        for (i, r) in rows.iter().enumerate() {
            t.row(r, '│');
            if i + 1 < rows.len() {
                t.rule('├', '─', '┼', '┤');
            }
        }
        t.rule('└', '─', '┴', '┘');
        let total = self.params.count(None);
        let trainable = self.params.count(Some(true));
        let frozen = self.params.count(Some(false));
        let mut out = t.out;
        out.push_str(&format!(
            " Total params: {} ({})\n",
            thousands(total),
            readable_bytes(total * 4)
        ));
        out.push_str(&format!(
            " Trainable params: {} ({})\n",
            thousands(trainable),
            readable_bytes(trainable * 4)
        ));
        out.push_str(&format!(
            " Non-trainable params: {} ({})\n",
            thousands(frozen),
            readable_bytes(frozen * 4)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_as_keras_does() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(896), "896");
        assert_eq!(thousands(122570), "122,570");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(readable_bytes(0), "0.00 B");
        assert_eq!(readable_bytes(122570 * 4), "478.79 KB");
    }
}
