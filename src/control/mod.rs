//! Control plane: logging, signals, systemd notifications, a small HTTP endpoint (health,
//! Prometheus metrics, streams).

pub mod http;
pub mod logging;
pub mod notify;
pub mod signals;
