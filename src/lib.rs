//! avsepd: real-time audio-visual speech separation daemon.
//!
//! One module per pipeline stage: `media` (GStreamer ingest, egress, RTSP server), `dsp` (streaming
//! STFT), `model` (ONNX Runtime and the separation plug-in point), `stream` (one stream's threads and
//! channels), `control` (logging, signals; the HTTP API comes later), `vision` (face detection, tracking and
//! mouth crops).

pub mod config;
pub mod control;
pub mod dsp;
pub mod media;
pub mod model;
pub mod stream;
pub mod vision;
