//! Specialisation of WGSL templates by plain text substitution of `{{NAME}}` placeholders, and
//! the literal formatting the substituted values need.

use crate::KernelError;
use std::fmt::Display;

/// A WGSL template with values for its `{{NAME}}` placeholders (names are upper-case letters,
/// digits and underscores). Substituted text is not scanned again, so a value may itself be
/// rendered WGSL.
#[derive(Debug, Clone)]
pub struct Template {
    source: &'static str,
    values: Vec<(&'static str, String)>,
}

impl Template {
    /// A template over `source` (usually an `include_str!` of a `wgsl/*.wgsl` file).
    pub fn new(source: &'static str) -> Self {
        Template {
            source,
            values: Vec::new(),
        }
    }

    /// Sets the text that replaces `{{name}}`.
    pub fn set(mut self, name: &'static str, value: impl Display) -> Self {
        self.values.push((name, value.to_string()));
        self
    }

    /// Renders the template for `kernel`. Every placeholder must have a value and every value
    /// must be used; otherwise the error names the kernel and the placeholder.
    pub fn render(&self, kernel: &str) -> Result<String, KernelError> {
        let mut out = String::with_capacity(self.source.len() + 256);
        let mut used = vec![false; self.values.len()];
        let mut rest = self.source;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| KernelError::invalid(kernel, "template has an unclosed `{{` placeholder"))?;
            let name = &after[..end];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(KernelError::invalid(
                    kernel,
                    format!("template placeholder `{{{{{name}}}}}` is malformed"),
                ));
            }
            let idx = self.values.iter().position(|(n, _)| *n == name).ok_or_else(|| {
                KernelError::invalid(kernel, format!("template placeholder `{{{{{name}}}}}` has no value"))
            })?;
            used[idx] = true;
            out.push_str(&self.values[idx].1);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        if let Some(i) = used.iter().position(|u| !u) {
            return Err(KernelError::invalid(
                kernel,
                format!(
                    "value for `{}` matches no placeholder of the template",
                    self.values[i].0
                ),
            ));
        }
        Ok(out)
    }
}

/// An `f32` WGSL literal for `x` that round-trips exactly (`0.2f`, `1e-5f`); non-finite values
/// become a `bitcast` of their bit pattern, since WGSL has no literal for them.
pub fn f32_lit(x: f32) -> String {
    if x.is_finite() {
        let s = format!("{x:?}");
        format!("{s}f")
    } else {
        format!("bitcast<f32>({:#010x}u)", x.to_bits())
    }
}

/// A `u32` WGSL literal (`12u`).
pub fn u32_lit(x: impl Into<u64>) -> String {
    format!("{}u", x.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_without_rescanning() {
        let t = Template::new("a {{X}} b {{Y}} {{X}}").set("X", "{{Y}}").set("Y", 2);
        assert_eq!(t.render("k").unwrap(), "a {{Y}} b 2 {{Y}}");
    }

    #[test]
    fn missing_and_unused_values_are_errors() {
        let err = Template::new("{{X}}").render("my_kernel").unwrap_err();
        assert!(
            err.to_string().contains("my_kernel") && err.to_string().contains("{{X}}"),
            "{err}"
        );
        let err = Template::new("x").set("Y", 1).render("k").unwrap_err();
        assert!(err.to_string().contains("`Y`"), "{err}");
        assert!(Template::new("{{x y}}").render("k").is_err());
        assert!(Template::new("{{X").render("k").is_err());
    }

    #[test]
    fn float_literals() {
        assert_eq!(f32_lit(0.2), "0.2f");
        assert_eq!(f32_lit(1.0), "1.0f");
        assert_eq!(f32_lit(-1e-5), "-1e-5f");
        assert_eq!(f32_lit(f32::NEG_INFINITY), "bitcast<f32>(0xff800000u)");
        assert_eq!(u32_lit(7u32), "7u");
    }
}
