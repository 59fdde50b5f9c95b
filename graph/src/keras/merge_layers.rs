//! Keras's merge layer classes (`Add`, `Multiply`, `Subtract`, `Maximum`, `Average`,
//! `Concatenate`) from their configs.

use super::args::Args;
use crate::error::Result;
use crate::layers::{Add, Average, Concatenate, Layer, Maximum, Multiply, Subtract};

/// The merge layer of class `class`, or `None` for another class.
pub(super) fn from_config(class: &str, a: &mut Args<'_>) -> Result<Option<Box<dyn Layer>>> {
    let name = a.name;
    Ok(Some(match class {
        "Add" => Box::new(Add::new().name(name)),
        "Multiply" => Box::new(Multiply::new().name(name)),
        "Subtract" => Box::new(Subtract::new().name(name)),
        "Maximum" => Box::new(Maximum::new().name(name)),
        "Average" => Box::new(Average::new().name(name)),
        "Concatenate" => {
            let axis = match a.get("axis") {
                None => -1,
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| a.err("axis", format!("expected an integer, got {v}")))?,
            };
            Box::new(Concatenate::new().axis(axis).name(name))
        }
        _ => return Ok(None),
    }))
}
