//! Control plane: logging, signals, a small HTTP endpoint (health, Prometheus metrics, streams).

pub mod http;
pub mod logging;
pub mod signals;
