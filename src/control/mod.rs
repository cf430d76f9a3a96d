//! Control plane: logging, signals, systemd notifications, and the HTTP control API (health,
//! readiness, Prometheus metrics, streams and their outputs, SDP, server-sent events).

pub mod http;
pub mod logging;
pub mod notify;
pub mod signals;
