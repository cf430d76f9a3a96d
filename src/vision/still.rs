//! Still images (png, jpg, anything GStreamer decodes) to packed RGB, for `avsepd faces` and tests.

use anyhow::{Context, Result, anyhow, bail};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use std::path::Path;

use super::image::RgbView;

/// An owned, tightly packed RGB8 image.
#[derive(Debug, Clone)]
pub struct RgbImage {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

impl RgbImage {
    pub fn view(&self) -> RgbView<'_> {
        RgbView::packed(&self.data, self.width, self.height)
    }
}

/// Decode the first frame of `path` to RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    crate::media::init()?;
    if !path.is_file() {
        bail!("image `{}` does not exist", path.display());
    }
    // The path is set as a property, never pasted into the launch line.
    let pipeline = gst::parse::launch(
        "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false",
    )?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow!("not a pipeline"))?;
    let by_name = |n: &str| {
        pipeline
            .by_name(n)
            .ok_or_else(|| anyhow!("element {n} missing"))
    };
    by_name("src")?.set_property("location", path.to_string_lossy().as_ref());
    let sink = by_name("sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow!("sink is not an appsink"))?;
    pipeline.set_state(gst::State::Playing)?;
    let sample = sink.pull_sample();
    let _ = pipeline.set_state(gst::State::Null);
    let sample =
        sample.map_err(|_| anyhow!("`{}`: no decodable picture in this file", path.display()))?;
    let caps = sample.caps().context("sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps)?;
    let buffer = sample.buffer().context("sample without buffer")?;
    let map = buffer.map_readable()?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = info.stride()[0] as usize;
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        data.extend_from_slice(&map[y * stride..y * stride + 3 * w]);
    }
    Ok(RgbImage {
        data,
        width: w,
        height: h,
    })
}
