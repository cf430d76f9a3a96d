//! TOML configuration: schema, loading and validation.
//!
//! Loading runs in three stages so that one restart shows the operator every problem at once:
//! 1. TOML syntax (the parser stops at the first syntax error; its line and column are reported);
//! 2. a walk over the parsed table against the known keys of each section, reporting every
//!    unknown key and every wrongly typed value under its dotted path (`walk.rs`);
//! 3. serde deserialization of what is left, then semantic validation (`validate.rs`).
//!
//! Stream URLs may carry credentials; messages only ever show [`redact_url`] output.

mod error;
mod schema;
mod secrets;
mod url;
mod validate;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

pub use error::{ConfigError, ConfigErrors};
pub use schema::{
    AudioCodec, Config, DaemonConfig, EgressConfig, LogFormat, ReconnectSettings, SeparationConfig,
    SeparationMode, StreamConfig, Transport, VisionSettings, limits,
};
pub use url::{URL_SCHEMES, redact_url};

/// What validation may assume about where streams come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidationMode {
    /// The config must be complete: at least one stream is declared.
    #[default]
    Complete,
    /// The caller adds streams itself (e.g. `avsepd run --url URL` on top of a config file
    /// without streams), so an empty `streams` table is fine. Everything else is checked;
    /// validate again in [`ValidationMode::Complete`] after adding the streams.
    StreamsFromCaller,
}

impl Config {
    /// Parses and validates a complete configuration; see [`Config::from_toml_str_with`].
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigErrors> {
        Self::from_toml_str_with(text, ValidationMode::Complete)
    }

    /// Parses and validates configuration text, reporting every problem at once.
    pub fn from_toml_str_with(text: &str, mode: ValidationMode) -> Result<Config, ConfigErrors> {
        let document = match text.parse::<toml::Table>() {
            Ok(document) => document,
            Err(e) => return Err(ConfigErrors::new(vec![syntax_error(text, &e)])),
        };
        let walked = walk::walk(document);
        let mut errors = walked.errors;
        let mut config = match Config::deserialize(walked.table) {
            Ok(config) => config,
            Err(e) => {
                // The walk is meant to leave only deserializable values; if it missed a case,
                // report it rather than panic.
                errors.push(ConfigError::new("config", one_line(e.message())));
                return Err(ConfigErrors::new(errors));
            }
        };
        // Secrets first, so that validation sees (and redacts) the URL the daemon will open.
        let secret_errors = secrets::expand(&mut config, &secrets::ProcessSecrets);
        let mut tainted = walked.tainted;
        tainted.extend(secret_errors.iter().map(|e| e.field.clone()));
        errors.extend(secret_errors);
        errors.extend(validate::validate(&config, mode, &tainted));
        sorted(errors).into_result()?;
        Ok(config)
    }

    /// Reads, parses and validates a complete configuration file. Errors carry the file name.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_with(path, ValidationMode::Complete)
    }

    /// [`Config::load`] with an explicit [`ValidationMode`].
    pub fn load_with(path: &Path, mode: ValidationMode) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::new(vec![ConfigError::new(
                path.display().to_string(),
                format!("cannot read config file: {e}"),
            )])
        })?;
        Self::from_toml_str_with(&text, mode).map_err(|e| e.file(path))
    }

    /// Validates a complete configuration (at least one stream), e.g. one built in code.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        self.validate_with(ValidationMode::Complete)
    }

    /// Validates with an explicit [`ValidationMode`].
    pub fn validate_with(&self, mode: ValidationMode) -> Result<(), ConfigErrors> {
        sorted(validate::validate(self, mode, &BTreeSet::new())).into_result()
    }

    /// Default configuration with one stream `name` reading `url`: what `avsepd run --url URL`
    /// runs when no config file is given. Not validated; call [`Config::validate`].
    pub fn single_stream(name: impl Into<String>, url: impl Into<String>) -> Config {
        let mut config = Config::default();
        config.streams.insert(name.into(), StreamConfig::new(url));
        config
    }

    /// A copy with every stream URL redacted, for printing the effective configuration.
    #[must_use]
    pub fn redacted(&self) -> Config {
        let mut config = self.clone();
        for stream in config.streams.values_mut() {
            stream.url = stream.redacted_url();
        }
        config
    }
}

/// Renders a map key as one segment of a dotted field path: bare when TOML allows a bare key
/// (`[A-Za-z0-9_-]+`), quoted and escaped (Rust `{:?}` style) otherwise.
/// Quoting keeps control characters and dots in hostile keys from garbling error lines.
pub(crate) fn key_segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        walk::show_str(key)
    }
}

/// Orders errors by field path so that problems with one section or stream are listed together
/// regardless of which stage found them; the sort is stable, so several errors about one field
/// keep the order they were found in.
fn sorted(mut errors: Vec<ConfigError>) -> ConfigErrors {
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    ConfigErrors::new(errors)
}

/// Turns a toml parse error into a one-line error located by line and column.
fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let message = format!("TOML syntax error: {}", one_line(error.message()));
    match error.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            ConfigError::new(format!("line {line}, column {column}"), message)
        }
        None => ConfigError::new("toml", message),
    }
}

/// 1-based line and column (in characters) of byte `offset`, clamped to the text.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
