//! An in-process RTSP server (gst-rtsp-server) that serves an MP4 file as a live camera would:
//! H.264 video as is, audio as L16 or AAC. Used by `avsepd demo`, `avsepd bench` and the tests.
//!
//! Each client gets its own media from the start of the file, played in real time; at the end of
//! the file the server ends the stream (RTCP BYE), which a client sees as EOS.

use crate::media::templates;
use anyhow::{Context, Result, anyhow, bail};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How the served stream carries its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedAudio {
    /// Decoded to 16 kHz mono (audioconvert ! audioresample) and sent as RTP L16: a test source
    /// whose every sample can be compared with the file.
    L16,
    /// The file's AAC as it is (RTP MPEG4-GENERIC), as most cameras send it.
    Aac,
}

/// Holds new clients' media set-up until released (see [`RtspFileServer::hold_clients`]).
type Gate = Arc<(Mutex<bool>, Condvar)>;

/// Longest a held client waits before it is served anyway.
const HOLD_LIMIT: Duration = Duration::from_secs(30);

pub struct RtspFileServer {
    main_loop: glib::MainLoop,
    gate: Gate,
    server: rtsp::RTSPServer,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
    mount: String,
}

impl RtspFileServer {
    /// Serve `file` at `rtsp://127.0.0.1:<port>/<mount>`; `port` 0 picks a free one.
    pub fn start(file: &Path, mount: &str, audio: ServedAudio, port: u16) -> Result<Self> {
        crate::media::init()?;
        if !file.is_file() {
            bail!("RTSP server: file `{}` does not exist", file.display());
        }
        let file: PathBuf = std::fs::canonicalize(file)?;
        let context = glib::MainContext::new();
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());

        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(match audio {
            ServedAudio::L16 => templates::RTSP_SERVE_MP4_L16.trim(),
            ServedAudio::Aac => templates::RTSP_SERVE_MP4_AAC.trim(),
        });
        factory.set_shared(false);
        let gate: Gate = Arc::new((Mutex::new(false), Condvar::new()));
        let held = gate.clone();
        // The file path is a property, never part of the launch description.
        factory.connect_media_configure(move |_, media| {
            let (lock, cvar) = &*held;
            let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            let _ = cvar.wait_timeout_while(guard, HOLD_LIMIT, |holding| *holding);
            let element = media.element();
            if let Some(bin) = element.downcast_ref::<gst::Bin>()
                && let Some(src) = bin.by_name("file")
            {
                src.set_property("location", file.to_string_lossy().as_ref());
            }
        });
        let mounts = server
            .mount_points()
            .ok_or_else(|| anyhow!("RTSP server without mount points"))?;
        let mount = format!("/{}", mount.trim_start_matches('/'));
        mounts.add_factory(&mount, factory);

        let source = server
            .attach(Some(&context))
            .context("RTSP server could not listen on 127.0.0.1")?;
        let bound = server.bound_port();
        if bound <= 0 {
            source.remove();
            bail!("RTSP server could not bind 127.0.0.1:{port}");
        }
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let thread = {
            let main_loop = main_loop.clone();
            std::thread::Builder::new()
                .name("rtsp-server".into())
                .spawn(move || {
                    let _ = context.with_thread_default(|| main_loop.run());
                    // Stop listening. (SourceId::remove panics if the source is already gone.)
                    if let Some(s) = context.find_source_by_id(&source) {
                        s.destroy();
                    }
                })?
        };
        Ok(RtspFileServer {
            main_loop,
            gate,
            server,
            thread: Some(thread),
            port: bound as u16,
            mount,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}{}", self.port, self.mount)
    }

    /// Hold the media set-up of clients that connect from now on, until [`Self::release_clients`]
    /// (at most 30 s). Tests use it to have their RTP receivers listening before data flows.
    pub fn hold_clients(&self) {
        *self.gate.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }

    pub fn release_clients(&self) {
        *self.gate.0.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.gate.1.notify_all();
    }

    /// Disconnect every client: close its connection (which tears its media down) and drop it.
    /// Closing matters: with RTP interleaved over TCP the media's threads write to the socket
    /// directly, so a client that is only forgotten keeps receiving data.
    pub fn disconnect_clients(&self) {
        for client in self.server.client_filter(None) {
            client.close();
        }
        self.server
            .client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
    }

    pub fn stop(&mut self) {
        self.release_clients();
        self.disconnect_clients();
        if let Some(t) = self.thread.take() {
            // Quit until the thread has ended: a quit that comes before the thread has entered
            // `run` is undone by it (run marks the loop running), and one join would then wait
            // forever (a server started and dropped at once).
            while !t.is_finished() {
                self.main_loop.quit();
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = t.join();
        }
    }
}

impl Drop for RtspFileServer {
    fn drop(&mut self) {
        self.stop();
    }
}
