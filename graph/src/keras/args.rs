//! Reading one Keras layer's `config` object: typed getters with Keras's defaults, and a final
//! check that every argument was understood (an argument Fovea does not know, with a value that
//! is not `null`, is an error rather than a silent difference).

use crate::error::{GraphError, Result};
use crate::layers::Size2;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// One layer's config: its class and name (for errors) and the arguments read so far.
pub(crate) struct Args<'a> {
    pub class: &'a str,
    pub name: &'a str,
    cfg: &'a Map<String, Value>,
    used: HashSet<&'a str>,
}

impl<'a> Args<'a> {
    pub fn new(class: &'a str, name: &'a str, cfg: &'a Map<String, Value>) -> Self {
        Args {
            class,
            name,
            cfg,
            used: HashSet::new(),
        }
    }

    /// An error about `argument` of this layer; the message starts with the Keras class.
    pub fn err(&self, argument: &str, message: impl std::fmt::Display) -> GraphError {
        GraphError::arg(self.name, argument, format!("{}: {message}", self.class))
    }

    /// The value of `key` (marked as read); `None` when absent or `null`.
    pub fn get(&mut self, key: &'a str) -> Option<&'a Value> {
        self.used.insert(key);
        self.cfg.get(key).filter(|v| !v.is_null())
    }

    /// Marks arguments as read without looking at them (initializers, seeds...).
    pub fn ignore(&mut self, keys: &[&'a str]) {
        self.used.extend(keys);
    }

    /// A non-negative integer argument.
    pub fn usize(&mut self, key: &'a str, default: usize) -> Result<usize> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => as_usize(v).ok_or_else(|| self.err(key, format!("expected a non-negative integer, got {v}"))),
        }
    }

    /// An integer or a pair of integers (`kernel_size`, `strides`, ...).
    pub fn size2(&mut self, key: &'a str, default: Size2) -> Result<Size2> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => self.size2_of(key, v),
        }
    }

    /// Like [`Args::size2`] for a value already read.
    pub fn size2_of(&self, key: &str, v: &Value) -> Result<Size2> {
        if let Some(n) = as_usize(v) {
            return Ok(Size2(n, n));
        }
        match v.as_array().map(|a| a.iter().map(as_usize).collect::<Option<Vec<_>>>()) {
            Some(Some(p)) if p.len() == 2 => Ok(Size2(p[0], p[1])),
            _ => Err(self.err(key, format!("expected an integer or a pair of integers, got {v}"))),
        }
    }

    /// A string argument.
    pub fn string(&mut self, key: &'a str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(key, format!("expected a string, got {v}"))),
        }
    }

    /// A boolean argument.
    pub fn bool(&mut self, key: &'a str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(key, format!("expected true or false, got {v}"))),
        }
    }

    /// A number argument.
    pub fn f32(&mut self, key: &'a str, default: f32) -> Result<f32> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|x| x as f32)
                .ok_or_else(|| self.err(key, format!("expected a number, got {v}"))),
        }
    }

    /// The activation, by Keras name (a string, or a serialized function object naming one).
    pub fn activation(&mut self, key: &'a str) -> Result<String> {
        match self.get(key) {
            None => Ok("linear".into()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v @ Value::Object(o)) => match (o.get("config"), o.get("class_name")) {
                (Some(Value::String(s)), _) => Ok(s.clone()),
                (_, Some(Value::String(s)))
                    if o.get("config")
                        .is_none_or(|c| c.as_object().is_some_and(|c| c.is_empty())) =>
                {
                    Ok(s.to_lowercase())
                }
                _ => Err(self.err(
                    key,
                    format!("a custom or parameterized activation is not supported: {v}"),
                )),
            },
            Some(v) => Err(self.err(key, format!("expected an activation name, got {v}"))),
        }
    }

    /// An argument Fovea does not support unless it is absent or `null` (regularizers,
    /// constraints, `noise_shape`...).
    pub fn must_be_null(&mut self, key: &'a str, why: &str) -> Result<()> {
        match self.get(key) {
            None => Ok(()),
            Some(v) => Err(self.err(key, format!("{v} is not supported ({why}); only null is"))),
        }
    }

    /// An argument Fovea supports only at the value `expected` (or absent/`null`).
    pub fn must_equal(&mut self, key: &'a str, expected: Value, why: &str) -> Result<()> {
        match self.get(key) {
            Some(v) if *v != expected => {
                Err(self.err(key, format!("{v} is not supported ({why}); only {expected} is")))
            }
            _ => Ok(()),
        }
    }

    /// The arguments every layer has: `name`, `trainable` (returned), `dtype`, and for image
    /// layers `data_format`.
    pub fn common(&mut self) -> Result<bool> {
        let trainable = self.bool("trainable", true)?;
        // `batch_input_shape` on a first layer is read by the model (tf.keras 2 Sequential).
        self.ignore(&["name", "batch_input_shape", "batch_shape"]);
        if let Some(d) = self.get("dtype") {
            let name = match d {
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) => o
                    .get("config")
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .or_else(|| o.get("name").and_then(Value::as_str)),
                _ => None,
            };
            if name != Some("float32") {
                return Err(self.err("dtype", format!("{d} is not supported; Fovea computes in float32")));
            }
        }
        let fmt = self.string("data_format", "channels_last")?;
        if fmt != "channels_last" {
            return Err(self.err(
                "data_format",
                format!("\"{fmt}\" is not supported; Fovea's images are channels_last (NHWC)"),
            ));
        }
        Ok(trainable)
    }

    /// Checks that every argument was read; an unknown one with a non-null value is an error.
    pub fn finish(&self) -> Result<()> {
        let mut keys: Vec<&String> = self.cfg.keys().collect();
        keys.sort();
        for k in keys {
            let v = &self.cfg[k.as_str()];
            if !self.used.contains(k.as_str()) && !v.is_null() {
                return Err(self.err(k, format!("unknown argument (value {v}); Fovea does not support it")));
            }
        }
        Ok(())
    }
}

/// A JSON number that is a non-negative integer.
pub(crate) fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64()
        .map(|n| n as usize)
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as usize))
}
