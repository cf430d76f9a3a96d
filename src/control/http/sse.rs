//! `GET /api/events`: server-sent events, one per state change of any stream and one per start
//! and end of a speaker slot's speech.
//!
//! On connect the client gets one `status` event per stream (its current status), then
//! `event: <kind>` (`up`, `down`, `retrying`, `stopped`, `speech_start`, `speech_end`) with the
//! [`StreamEvent`] as JSON data for every change. A client too slow to keep up with a stream's broadcast channel gets a
//! `lagged` event naming the stream and how many events it missed (it should then re-read
//! `/api/streams`). Idle connections get a comment line every keep-alive interval, which is also
//! how a vanished client is noticed.

use super::{Streams, write_all_timeout};
use crate::stream::{Stream, StreamEvent};
use serde_json::json;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// Frames waiting for a slow client, across all streams.
const QUEUE: usize = 64;
/// How often the stream list is checked for streams a reload added.
const RESCAN: Duration = Duration::from_secs(1);

fn frame(event: &str, data: &serde_json::Value) -> String {
    // serde_json never emits a raw newline, so the data is one `data:` line.
    format!("event: {event}\ndata: {data}\n\n")
}

fn event_frame(e: &StreamEvent) -> String {
    frame(e.kind, &json!(e))
}

pub(super) async fn serve_events(
    mut socket: TcpStream,
    streams: &Streams,
    keepalive: Duration,
) -> std::io::Result<()> {
    let (tx, mut frames) = mpsc::channel::<String>(QUEUE);
    let mut watched: Vec<Weak<Stream>> = Vec::new();
    // Subscribe before answering, so no change after the snapshot is missed.
    let first = subscribe_new(&streams.snapshot(), &mut watched, &tx);
    let mut start = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
         Connection: close\r\nX-Accel-Buffering: no\r\n\r\nretry: 2000\n\n",
    );
    start.push_str(&first);
    write_all_timeout(&mut socket, start.as_bytes()).await?;

    let (mut rd, mut wr) = socket.split();
    let now = tokio::time::Instant::now();
    let mut keepalive = tokio::time::interval_at(now + keepalive, keepalive);
    // A reload may add streams: look for new ones now and then.
    let mut rescan = tokio::time::interval_at(now + RESCAN, RESCAN);
    let mut scratch = [0u8; 512];
    loop {
        tokio::select! {
            next = frames.recv() => match next {
                Some(f) => write_all_timeout(&mut wr, f.as_bytes()).await?,
                None => break,
            },
            _ = keepalive.tick() => write_all_timeout(&mut wr, b": keep-alive\n\n").await?,
            _ = rescan.tick() => {
                let added = subscribe_new(&streams.snapshot(), &mut watched, &tx);
                if !added.is_empty() {
                    write_all_timeout(&mut wr, added.as_bytes()).await?;
                }
            }
            // A client sends nothing after its request: any return means it is gone.
            read = rd.read(&mut scratch) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
        }
    }
    // Dropping `frames` ends the forwarders (they watch for it).
    Ok(())
}

/// Subscribe to the streams not watched yet; returns their `status` events (current status).
fn subscribe_new(
    streams: &[Arc<Stream>],
    watched: &mut Vec<Weak<Stream>>,
    tx: &mpsc::Sender<String>,
) -> String {
    watched.retain(|w| w.strong_count() > 0);
    let mut text = String::new();
    for s in streams {
        if watched
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(s)))
        {
            continue;
        }
        watched.push(Arc::downgrade(s));
        tokio::spawn(forward(
            s.spec.name.clone(),
            s.events.subscribe(),
            tx.clone(),
        ));
        let data = json!({ "stream": s.spec.name, "status": s.status() });
        text.push_str(&frame("status", &data));
    }
    text
}

/// Move one stream's events into the connection's queue until the connection ends.
async fn forward(
    stream: String,
    mut rx: tokio::sync::broadcast::Receiver<StreamEvent>,
    tx: mpsc::Sender<String>,
) {
    loop {
        let text = tokio::select! {
            _ = tx.closed() => return,
            r = rx.recv() => match r {
                Ok(e) => event_frame(&e),
                Err(RecvError::Lagged(missed)) => {
                    frame("lagged", &json!({ "stream": stream, "missed": missed }))
                }
                Err(RecvError::Closed) => return,
            },
        };
        if tx.send(text).await.is_err() {
            return;
        }
    }
}
