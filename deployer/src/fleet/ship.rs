//! Registry-free image shipping: an image is exported once from the engine that has it and
//! streamed, at the same time, into every host's engine that lacks it (through each host's SSH
//! tunnel). The engine checks the archive and tags the image only once all of it has arrived,
//! so a shipment cut short leaves nothing half-loaded behind.
//! May not import `commands` or `plan`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;

use crate::engine::Engine;

/// Chunks in flight per host: the slowest host paces the export, and memory stays bounded.
const BUFFER: usize = 16;

/// What a shipment moved.
#[derive(Debug, Clone)]
pub struct Shipped {
    pub image: String,
    pub bytes: u64,
    pub took: Duration,
    /// Per host: `Ok` loaded, `Err` why not.
    pub hosts: Vec<(String, Result<(), String>)>,
}

impl Shipped {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.took.as_secs_f64().max(1e-3)
    }
}

/// Sends `image` from `source` to each of `targets` (name, engine) at once.
pub async fn ship(source: &Engine, image: &str, targets: &[(String, Engine)]) -> Shipped {
    let started = Instant::now();
    let bytes = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    let mut loads = Vec::new();
    for (name, engine) in targets {
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(BUFFER);
        senders.push(tx);
        let engine = engine.clone();
        let name = name.clone();
        loads.push(tokio::spawn(async move {
            let stream = tokio_stream_of(rx);
            let result = engine
                .load_image(stream)
                .await
                .map_err(|e| format!("{e:#}"));
            (name, result)
        }));
    }
    let mut export = Box::pin(source.export_image(image));
    let mut export_error = None;
    while let Some(chunk) = export.next().await {
        match chunk {
            Ok(chunk) => {
                bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                for tx in &senders {
                    // A host whose load failed has dropped its receiver: the others go on.
                    let _ = tx.send(chunk.clone()).await;
                }
            }
            Err(e) => {
                export_error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    drop(senders);
    let mut hosts = Vec::new();
    for load in loads {
        let (name, result) = load
            .await
            .context("the load task")
            .unwrap_or_else(|e| (String::from("?"), Err(format!("{e:#}"))));
        let result = match (&export_error, result) {
            (Some(e), _) => Err(format!("the export from the source engine failed: {e}")),
            (None, r) => r,
        };
        hosts.push((name, result));
    }
    Shipped {
        image: image.to_string(),
        bytes: bytes.load(Ordering::Relaxed),
        took: started.elapsed(),
        hosts,
    }
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> impl futures_util::Stream<Item = bytes::Bytes> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
