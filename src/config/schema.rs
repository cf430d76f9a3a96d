//! The configuration data model: the typed structs the daemon consumes, their defaults, and the
//! numeric limits shared by the pre-serde walk and semantic validation.
//!
//! Every default is a small named function so that `#[serde(default = ...)]` and the `Default`
//! impls cannot drift apart; `config/avsepd.toml` documents the same values and a test checks it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::url::redact_url;

/// Allowed ranges of the numeric settings. Kept in one place because both the TOML walk (which
/// must reject values that do not even fit the Rust type) and [`super::Config::validate`] (which
/// also runs on configs built in code) check them, with the same message.
pub mod limits {
    use std::ops::RangeInclusive;

    /// `egress.opus_bitrate`, bits/s: the range libopus accepts.
    pub const OPUS_BITRATE: RangeInclusive<i64> = 6_000..=510_000;
    /// `egress.rtp_mtu`, bytes: IPv4 minimum reassembly size up to jumbo frames.
    pub const RTP_MTU: RangeInclusive<i64> = 576..=9_000;
    /// `egress.overlay_bitrate_kbps`.
    pub const OVERLAY_BITRATE_KBPS: RangeInclusive<i64> = 64..=20_000;
    /// `separation.max_speakers`: speaker slots per stream.
    pub const MAX_SPEAKERS: RangeInclusive<i64> = 1..=8;
    /// `vision.detect_every`: run the face detector on every n-th frame.
    pub const DETECT_EVERY: RangeInclusive<i64> = 1..=25;
    /// `vision.min_face_px`: narrower faces are tracked but not offered to separation.
    pub const MIN_FACE_PX: RangeInclusive<i64> = 0..=1_000;
    /// `reconnect.stall_timeout_ms`: no data for this long counts as a dead source.
    pub const STALL_TIMEOUT_MS: RangeInclusive<i64> = 500..=600_000;
    /// `reconnect.initial_backoff_ms` and `reconnect.max_backoff_ms`.
    pub const BACKOFF_MS: RangeInclusive<i64> = 50..=600_000;
    /// `reconnect.jitter_percent`.
    pub const JITTER_PERCENT: RangeInclusive<i64> = 0..=100;
    /// `streams.*.latency_ms`: RTSP jitterbuffer.
    pub const LATENCY_MS: RangeInclusive<i64> = 0..=10_000;
    /// `streams.*.base_port` and `streams.*.overlay_port`: unprivileged UDP ports.
    pub const PORT: RangeInclusive<i64> = 1_024..=65_535;
    /// `streams.*.video_width`.
    pub const VIDEO_WIDTH: RangeInclusive<i64> = 64..=3_840;
    /// `streams.*.video_height`.
    pub const VIDEO_HEIGHT: RangeInclusive<i64> = 64..=2_160;
    /// Longest DNS name `egress.rtp_host` may hold.
    pub const RTP_HOST_MAX_LEN: usize = 253;
    /// Longest stream name (names become file names).
    pub const STREAM_NAME_MAX_LEN: usize = 64;
    /// Offset of the default overlay port from `base_port`.
    pub const OVERLAY_PORT_OFFSET: u16 = 100;

    /// Formats a range for messages: `1024..=65535`.
    pub(crate) fn show(range: &RangeInclusive<i64>) -> String {
        format!("{}..={}", range.start(), range.end())
    }
}

/// Whole daemon configuration, as read from `avsepd.toml`.
///
/// Every section is optional; an absent section takes its defaults. `streams` may be empty in the
/// file (the `run --url` shortcut supplies one), which is why "at least one stream" is a
/// validation rule with an opt-out ([`super::ValidationMode`]) rather than a parse rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process-wide settings.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// Where and how RTP leaves the daemon.
    #[serde(default)]
    pub egress: EgressConfig,
    /// Separation back-end.
    #[serde(default)]
    pub separation: SeparationConfig,
    /// Face detection and tracking.
    #[serde(default)]
    pub vision: VisionSettings,
    /// What happens when a source drops, ends or stalls.
    #[serde(default)]
    pub reconnect: ReconnectSettings,
    /// Input streams keyed by name; the name ends up in SDP file names.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamConfig>,
}

/// `[daemon]`: process-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Control API address; loopback by default. Without a token the API is unauthenticated.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Name of the environment variable holding the control API's bearer token. A systemd
    /// credential `$CREDENTIALS_DIRECTORY/api_token` takes precedence; with neither, no token.
    #[serde(default = "default_api_token_env")]
    pub api_token_env: String,
    /// Log output format.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Explicit `libonnxruntime.so`; `None` (empty string in the file) means auto-detect
    /// (`ORT_DYLIB_PATH`, then the set-up cache).
    #[serde(
        default,
        deserialize_with = "empty_path_as_none",
        serialize_with = "none_path_as_empty"
    )]
    pub onnxruntime_library: Option<PathBuf>,
    /// Where the models run: `auto` (CUDA when the library has it, else the CPU with a warning),
    /// `cpu` or `cuda` (an error without it).
    #[serde(default)]
    pub execution_provider: crate::model::runtime::ExecutionProvider,
}

/// `[egress]`: RTP output settings shared by all streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Destination host of all RTP outputs (IP address or DNS name).
    #[serde(default = "default_rtp_host")]
    pub rtp_host: String,
    /// Directory SDP files are written to.
    #[serde(default = "default_sdp_dir")]
    pub sdp_dir: PathBuf,
    /// Speaker audio codec.
    #[serde(default)]
    pub audio_codec: AudioCodec,
    /// Opus bitrate, bits/s.
    #[serde(default = "default_opus_bitrate")]
    pub opus_bitrate: u32,
    /// Maximum RTP packet size, bytes.
    #[serde(default = "default_rtp_mtu")]
    pub rtp_mtu: u32,
    /// Whether to publish the overlay video stream.
    #[serde(default = "default_true")]
    pub overlay: bool,
    /// Overlay video bitrate, kbit/s.
    #[serde(default = "default_overlay_bitrate_kbps")]
    pub overlay_bitrate_kbps: u32,
}

/// `[separation]`: separation back-end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparationConfig {
    /// Back-end: `bypass` (the mix on slot 0) or `model` (one voice per face).
    #[serde(default)]
    pub mode: SeparationMode,
    /// Speaker slots per stream; each slot owns two UDP ports (RTP + RTCP).
    #[serde(default = "default_max_speakers")]
    pub max_speakers: u8,
    /// The separator model for `mode = "model"`; `None` (empty string in the file) means the
    /// shipped `models/separator.onnx` (installed: `<prefix>/share/avsepd/separator.onnx`).
    #[serde(
        default,
        deserialize_with = "empty_path_as_none",
        serialize_with = "none_path_as_empty"
    )]
    pub model: Option<PathBuf>,
}

/// `[vision]`: faces in the video (detector, tracker, mouth crops).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionSettings {
    /// Detect and track faces (timeline faces, overlay boxes, the separator's conditioning).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Run the detector on every n-th frame and track in between (the detector is the costly part).
    #[serde(default = "default_detect_every")]
    pub detect_every: u32,
    /// Faces narrower than this (input-video pixels) are tracked but not offered to separation.
    #[serde(default = "default_min_face_px")]
    pub min_face_px: u32,
}

/// `[reconnect]`: recovery of sources that drop, end or stall (all streams).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconnectSettings {
    /// Reconnect (true) or let the stream end with its source (false).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// No data, or (from a live camera) no audio while its video flows or the other way
    /// round, for this long (ms) counts as a dead source.
    #[serde(default = "default_stall_timeout_ms")]
    pub stall_timeout_ms: u32,
    /// First wait before reconnecting (ms); doubles on each failure up to `max_backoff_ms`.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u32,
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u32,
    /// Each wait is randomly scaled by up to +-this percentage.
    #[serde(default = "default_jitter_percent")]
    pub jitter_percent: u32,
}

impl Default for ReconnectSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            stall_timeout_ms: default_stall_timeout_ms(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            jitter_percent: default_jitter_percent(),
        }
    }
}

fn default_stall_timeout_ms() -> u32 {
    10_000
}

fn default_initial_backoff_ms() -> u32 {
    1_000
}

fn default_max_backoff_ms() -> u32 {
    30_000
}

fn default_jitter_percent() -> u32 {
    20
}

/// `[streams.NAME]`: one camera input.
///
/// `Debug` is written by hand so that the URL, which may carry credentials, is redacted.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Source URL (`rtsp://`, `rtsps://`, `rtspt://`, `file://`, `http(s)://`) or absolute path.
    /// Required; may contain `user:pass@`, see [`StreamConfig::redacted_url`].
    pub url: String,
    /// RTSP lower transport.
    #[serde(default)]
    pub transport: Transport,
    /// RTSP jitterbuffer, milliseconds.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: u32,
    /// The camera's clock is synchronized with this host's (both NTP): steadier timestamps.
    #[serde(default)]
    pub clock_synced: bool,
    /// Speaker slot `k` sends RTP to `base_port + 2k` (RTCP on the odd port above).
    #[serde(default = "default_base_port")]
    pub base_port: u16,
    /// Overlay video port; `None` means `base_port + 100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay_port: Option<u16>,
    /// Width the video is scaled to before the model and the overlay.
    #[serde(default = "default_video_width")]
    pub video_width: u32,
    /// Height the video is scaled to before the model and the overlay.
    #[serde(default = "default_video_height")]
    pub video_height: u32,
    /// Disabled streams are kept in the config (and still validated) but not started.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// `daemon.log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise (e.g. under systemd).
    #[default]
    Auto,
    /// Always human-readable.
    Human,
    /// Always one JSON object per line.
    Json,
}

/// `egress.audio_codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    /// Opus at `egress.opus_bitrate`.
    #[default]
    Opus,
    /// Uncompressed 16-bit PCM (RFC 3551 L16).
    L16,
}

/// `streams.*.transport`: RTSP lower transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Let the RTSP client negotiate (UDP first, then TCP).
    #[default]
    Auto,
    /// RTP interleaved over the RTSP TCP connection.
    Tcp,
    /// RTP over UDP.
    Udp,
}

/// `separation.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeparationMode {
    /// No separation: speaker slot 0 carries the input mix through the STFT stage.
    #[default]
    Bypass,
    /// The face-conditioned separator: speaker slot k carries the voice of the face holding it.
    Model,
}

impl LogFormat {
    /// Spellings accepted in the file, in declaration order.
    pub const NAMES: &'static [&'static str] = &["auto", "human", "json"];
}

impl AudioCodec {
    /// Spellings accepted in the file, in declaration order.
    pub const NAMES: &'static [&'static str] = &["opus", "l16"];
}

impl Transport {
    /// Spellings accepted in the file, in declaration order.
    pub const NAMES: &'static [&'static str] = &["auto", "tcp", "udp"];
}

impl SeparationMode {
    /// Spellings accepted in the file, in declaration order.
    pub const NAMES: &'static [&'static str] = &["bypass", "model"];
}

fn default_listen() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8790)
}

fn default_api_token_env() -> String {
    "AVSEPD_API_TOKEN".to_owned()
}

fn default_rtp_host() -> String {
    "127.0.0.1".to_owned()
}

fn default_sdp_dir() -> PathBuf {
    PathBuf::from("/run/avsepd")
}

fn default_opus_bitrate() -> u32 {
    32_000
}

fn default_rtp_mtu() -> u32 {
    1_200
}

fn default_true() -> bool {
    true
}

fn default_overlay_bitrate_kbps() -> u32 {
    800
}

fn default_max_speakers() -> u8 {
    4
}

fn default_latency_ms() -> u32 {
    200
}

fn default_base_port() -> u16 {
    5_000
}

fn default_video_width() -> u32 {
    640
}

fn default_video_height() -> u32 {
    360
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            api_token_env: default_api_token_env(),
            log_format: LogFormat::default(),
            onnxruntime_library: None,
            execution_provider: Default::default(),
        }
    }
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            rtp_host: default_rtp_host(),
            sdp_dir: default_sdp_dir(),
            audio_codec: AudioCodec::default(),
            opus_bitrate: default_opus_bitrate(),
            rtp_mtu: default_rtp_mtu(),
            overlay: default_true(),
            overlay_bitrate_kbps: default_overlay_bitrate_kbps(),
        }
    }
}

impl Default for VisionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            detect_every: default_detect_every(),
            min_face_px: default_min_face_px(),
        }
    }
}

fn default_detect_every() -> u32 {
    5
}

fn default_min_face_px() -> u32 {
    40
}

impl Default for SeparationConfig {
    fn default() -> Self {
        Self {
            mode: SeparationMode::default(),
            max_speakers: default_max_speakers(),
            model: None,
        }
    }
}

/// All defaults with an empty `url`, which validation rejects: `url` has no sensible default.
/// Prefer [`StreamConfig::new`].
impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            transport: Transport::default(),
            latency_ms: default_latency_ms(),
            clock_synced: false,
            base_port: default_base_port(),
            overlay_port: None,
            video_width: default_video_width(),
            video_height: default_video_height(),
            enabled: default_true(),
        }
    }
}

impl StreamConfig {
    /// A stream reading `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Resolved overlay video port: `overlay_port`, or `base_port + 100`.
    ///
    /// Saturates at 65535 instead of overflowing; validation rejects such configs.
    pub fn overlay_port(&self) -> u16 {
        self.overlay_port
            .unwrap_or_else(|| self.base_port.saturating_add(limits::OVERLAY_PORT_OFFSET))
    }

    /// RTP port of speaker slot `k`: `base_port + 2k`.
    ///
    /// Saturates at 65535 instead of overflowing; validation guarantees that every slot below
    /// `separation.max_speakers` fits.
    pub fn speaker_port(&self, k: usize) -> u16 {
        k.checked_mul(2)
            .and_then(|offset| offset.checked_add(usize::from(self.base_port)))
            .and_then(|port| u16::try_from(port).ok())
            .unwrap_or(u16::MAX)
    }

    /// The URL with credentials replaced by `***`, safe for logs and error messages.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamConfig")
            .field("url", &self.redacted_url())
            .field("transport", &self.transport)
            .field("latency_ms", &self.latency_ms)
            .field("clock_synced", &self.clock_synced)
            .field("base_port", &self.base_port)
            .field("overlay_port", &self.overlay_port)
            .field("video_width", &self.video_width)
            .field("video_height", &self.video_height)
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// The file spells "auto-detect" as an empty string, which reads better than omitting the key in
/// a documented example.
fn empty_path_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let text = String::deserialize(d)?;
    Ok((!text.is_empty()).then(|| PathBuf::from(text)))
}

/// Mirror of [`empty_path_as_none`] so printing the effective config round-trips.
fn none_path_as_empty<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => path.serialize(s),
        None => s.serialize_str(""),
    }
}

/// Range helper used by the walk and by validation, kept next to [`limits`].
pub(crate) fn out_of_range(range: &RangeInclusive<i64>, value: i64) -> Option<String> {
    (!range.contains(&value)).then(|| format!("must be in {}, got {value}", limits::show(range)))
}
