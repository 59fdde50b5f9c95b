//! Keras's activation layer classes (`ReLU`, `LeakyReLU`, `PReLU`, `ELU`, `Softmax`) from
//! their configs.

use super::args::{Args, as_usize};
use crate::error::Result;
use crate::layers::{ELU, Layer, LeakyReLU, PReLU, ReLU, Softmax};
use serde_json::Value;

/// The activation layer of class `class`, or `None` for another class.
pub(super) fn from_config(class: &str, a: &mut Args<'_>) -> Result<Option<Box<dyn Layer>>> {
    let name = a.name;
    Ok(Some(match class {
        "ReLU" => {
            let mut l = ReLU::new()
                .negative_slope(a.f32("negative_slope", 0.0)?)
                .threshold(a.f32("threshold", 0.0)?)
                .name(name);
            if a.get("max_value").is_some() {
                l = l.max_value(a.f32("max_value", 0.0)?);
            }
            Box::new(l)
        }
        "LeakyReLU" => {
            // Keras 3 writes `negative_slope`; tf.keras 2 `alpha`.
            let slope = match a.get("negative_slope") {
                Some(_) => a.f32("negative_slope", 0.3)?,
                None => a.f32("alpha", 0.3)?,
            };
            a.ignore(&["alpha"]);
            Box::new(LeakyReLU::new().negative_slope(slope).name(name))
        }
        "PReLU" => {
            a.ignore(&["alpha_initializer"]);
            a.must_be_null("alpha_regularizer", "regularizers are not supported")?;
            a.must_be_null("alpha_constraint", "constraints are not supported")?;
            let axes = match a.get("shared_axes") {
                None => vec![],
                Some(v) => {
                    let list = match v {
                        Value::Array(items) => items.clone(),
                        one => vec![one.clone()],
                    };
                    list.iter()
                        .map(as_usize)
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| a.err("shared_axes", format!("expected a list of axes (1, 2, ...), got {v}")))?
                }
            };
            Box::new(PReLU::new().shared_axes(&axes).name(name))
        }
        "ELU" => Box::new(ELU::new().alpha(a.f32("alpha", 1.0)?).name(name)),
        "Softmax" => {
            let axis = match a.get("axis") {
                None => -1,
                Some(Value::Array(v)) if v.len() == 1 && v[0].is_i64() => v[0].as_i64().unwrap_or(-1),
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| a.err("axis", format!("{v} is not supported; only the last axis (-1) is")))?,
            };
            Box::new(Softmax::new().axis(axis).name(name))
        }
        _ => return Ok(None),
    }))
}
