//! Error types for configuration loading and validation.
//!
//! Operators fix configs in a loop of "edit, restart, read the journal", so every problem is
//! collected and reported at once instead of stopping at the first one. Each error names the
//! dotted field path (`streams.door.base_port`) so it can be found in the file without guessing.

use std::fmt;
use std::path::{Path, PathBuf};

/// One configuration problem: the dotted path of the field and what is wrong with it.
///
/// For TOML syntax errors there is no field yet; `field` then holds the location
/// (`line 3, column 7`), which reads naturally after a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted field path such as `streams.door.base_port`.
    pub field: String,
    /// Human-readable description; never contains a URL password.
    pub message: String,
}

impl ConfigError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration, optionally tied to the file it came from.
///
/// `Display` prints one error per line, each prefixed with the file name when one is attached
/// (`config/x.toml: streams.door.base_port: must be even, got 5001`), so the output works both in
/// a terminal and in the journal, where each line is a separate record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
    file: Option<PathBuf>,
}

impl ConfigErrors {
    /// Wraps a list of errors with no file context.
    pub fn new(errors: Vec<ConfigError>) -> Self {
        Self { errors, file: None }
    }

    /// Attaches the file the errors came from; `Display` then starts every line with it.
    #[must_use]
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.file = Some(path.as_ref().to_path_buf());
        self
    }

    /// The file attached with [`ConfigErrors::file`], if any.
    pub fn file_path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The individual errors, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// Consumes `self`, returning the individual errors.
    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// Iterates over the individual errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// True when no error was collected.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// True when some error names exactly `field`.
    pub fn has_field(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    /// `Ok(())` when empty, otherwise `Err(self)`.
    pub(crate) fn into_result(self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl From<Vec<ConfigError>> for ConfigErrors {
    fn from(errors: Vec<ConfigError>) -> Self {
        Self::new(errors)
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if let Some(file) = &self.file {
                write!(f, "{}: ", file.display())?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
