//! Run the vision stage over a whole media file, as fast as it decodes (no frame is dropped):
//! the driver behind `avsepd faces VIDEO` and the tracking tests.

use super::FaceObs;
use super::image::RgbView;
use super::pipeline::{FacePipeline, VisionConfig};
use crate::media::ingest::{Backpressure, Ingest, IngestEvent, IngestOptions};
use anyhow::{Result, anyhow, bail};
use crossbeam_channel::RecvTimeoutError;
use std::time::Duration;

/// Decode `uri` at `width x height` RGB, 25 fps, and call `on_frame(pts, faces)` for every frame.
/// Returns the number of frames.
pub fn track_uri(
    uri: &str,
    width: u32,
    height: u32,
    cfg: VisionConfig,
    with_crops: bool,
    mut on_frame: impl FnMut(u64, &[FaceObs]),
) -> Result<u64> {
    crate::model::runtime::init(None)?;
    let mut pipe = FacePipeline::new(cfg)?;
    let mut opts = IngestOptions::new(uri);
    opts.width = width;
    opts.height = height;
    opts.backpressure = Backpressure::Wait;
    let ingest = Ingest::start(&opts)?;
    // Audio is not used here, but with `Wait` a full audio channel would stall the demuxer.
    let audio = ingest.audio.clone();
    let drain = std::thread::spawn(move || while audio.recv().is_ok() {});

    let mut faces = Vec::new();
    let mut frames = 0u64;
    loop {
        match ingest.video.recv_timeout(Duration::from_millis(100)) {
            Ok(frame) => {
                let map = frame
                    .buffer
                    .map_readable()
                    .map_err(|_| anyhow!("unmappable frame"))?;
                let (w, h) = (frame.width as usize, frame.height as usize);
                // GStreamer pads RGB rows to 4 bytes.
                let stride = map.len() / h.max(1);
                let view = RgbView {
                    data: map.as_slice(),
                    width: w,
                    height: h,
                    stride,
                };
                pipe.process(frame.pts_ns, &view, with_crops, &mut faces)?;
                on_frame(frame.pts_ns, &faces);
                frames += 1;
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Ok(IngestEvent::Error(e)) = ingest.events.try_recv() {
                    bail!("{e}");
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    drop(ingest);
    let _ = drain.join();
    Ok(frames)
}
