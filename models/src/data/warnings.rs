//! [`Warnings`]: what a loader skipped or repaired, each naming the file, with a count.

use std::fmt;

/// Problems a data set could go on without (an item skipped, a box clipped), one line each.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Warnings {
    /// One message per problem, naming the file (and row).
    pub messages: Vec<String>,
}

impl Warnings {
    /// Records a problem.
    pub fn push(&mut self, message: String) {
        self.messages.push(message);
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there were none.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

impl fmt::Display for Warnings {
    /// Every message on its own line, then the count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.messages {
            writeln!(f, "warning: {m}")?;
        }
        write!(f, "{} warning{}", self.len(), if self.len() == 1 { "" } else { "s" })
    }
}
