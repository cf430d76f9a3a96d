//! Control plane: logging, signals. (The HTTP API, metrics and systemd notify build on this.)

pub mod logging;
pub mod signals;
