//! tracing set-up: human-readable on a terminal, JSON lines for journald and log collectors.

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Human on a terminal, JSON otherwise.
    #[default]
    Auto,
    Human,
    Json,
}

/// The config file's `daemon.log_format`, which applies when `--log-format` is not given.
impl From<crate::config::LogFormat> for LogFormatArg {
    fn from(f: crate::config::LogFormat) -> Self {
        use crate::config::LogFormat;
        match f {
            LogFormat::Auto => LogFormatArg::Auto,
            LogFormat::Human => LogFormatArg::Human,
            LogFormat::Json => LogFormatArg::Json,
        }
    }
}

/// Install the global subscriber. `RUST_LOG` overrides the default level (info).
pub fn init(format: LogFormatArg) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        LogFormatArg::Json => true,
        LogFormatArg::Human => false,
        LogFormatArg::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(false).try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
