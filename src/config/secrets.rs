//! Secrets in stream URLs come from outside the config file: `${NAME}` in a `url` is replaced by
//! the systemd credential `NAME` (`$CREDENTIALS_DIRECTORY/NAME`, from `LoadCredential=`) or, if
//! there is none, the environment variable `NAME`. So `url = "rtsp://cam:${DOOR_PASS}@10.0.0.5/"`
//! keeps the password out of the file; logs and errors show URLs redacted either way.

use super::{Config, ConfigError, key_segment};

/// Where a secret is looked up; a seam for tests.
pub(crate) trait SecretSource {
    fn get(&self, name: &str) -> Option<String>;
}

/// Systemd credentials first, then the environment.
pub(crate) struct ProcessSecrets;

impl SecretSource for ProcessSecrets {
    fn get(&self, name: &str) -> Option<String> {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY")
            && let Ok(text) = std::fs::read_to_string(std::path::Path::new(&dir).join(name))
        {
            return Some(text.trim_end_matches(['\r', '\n']).to_string());
        }
        std::env::var(name).ok()
    }
}

/// Replace every `${NAME}` in stream URLs; one error per reference that cannot be resolved.
pub(crate) fn expand(config: &mut Config, source: &dyn SecretSource) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (name, stream) in config.streams.iter_mut() {
        let field = format!("streams.{}.url", key_segment(name));
        match expand_str(&stream.url, source) {
            Ok(url) => stream.url = url,
            Err(message) => errors.push(ConfigError::new(field, message)),
        }
    }
    errors
}

fn expand_str(text: &str, source: &dyn SecretSource) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("`${` without a closing `}`".to_string());
        };
        let name = &after[..end];
        let valid = !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !valid {
            return Err(format!(
                "`${{{name}}}` is not a valid secret name (letters, digits, _ - .)"
            ));
        }
        match source.get(name) {
            // The value is percent-encoded: a password may hold `@`, `:` or `/`.
            Some(value) => out.push_str(&percent_encode(&value)),
            None => {
                return Err(format!(
                    "secret `{name}` is not set (neither a systemd credential nor an environment \
                     variable)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// RFC 3986 userinfo-safe encoding: unreserved characters stay, everything else is `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, &'static str>);

    impl SecretSource for Map {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
    }

    #[test]
    fn references_are_replaced_and_encoded() {
        let m = Map(HashMap::from([("PASS", "p@ss:w/rd"), ("USER", "cam")]));
        assert_eq!(
            expand_str("rtsp://${USER}:${PASS}@10.0.0.5/s", &m).unwrap(),
            "rtsp://cam:p%40ss%3Aw%2Frd@10.0.0.5/s"
        );
        assert_eq!(expand_str("rtsp://h/s", &m).unwrap(), "rtsp://h/s");
    }

    #[test]
    fn unresolved_references_name_the_secret_but_not_values() {
        let m = Map(HashMap::from([("PASS", "hunter2")]));
        let e = expand_str("rtsp://u:${MISSING}@h/", &m).unwrap_err();
        assert!(e.contains("MISSING") && !e.contains("hunter2"), "{e}");
        assert!(expand_str("rtsp://${PASS@h/", &m).is_err());
        assert!(expand_str("rtsp://${}@h/", &m).is_err());
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut cfg = Config::single_stream("door", "rtsp://u:${NOPE}@h/");
        let errors = expand(&mut cfg, &Map(HashMap::new()));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "streams.door.url");
    }
}
