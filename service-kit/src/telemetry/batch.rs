//! The batch span processor: finished spans wait in a bounded queue and are exported in batches
//! by one task on the exporter's runtime, every `OTEL_BSP_SCHEDULE_DELAY` or as soon as a batch
//! is full, as the OpenTelemetry specification's batching processor does. A request thread only
//! appends to the queue (one uncontended lock); it wakes the exporter once per full batch, never
//! per span. A full queue drops spans and says how many, instead of slowing the service.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::Duration;

use tokio::sync::{Notify, mpsc as channel};

use super::export::OtlpExporter;
use super::settings::BatchSettings;
use super::span_record::SpanRecord;

pub struct Queue {
    spans: Mutex<Vec<SpanRecord>>,
    settings: BatchSettings,
    dropped: AtomicU64,
    batch_full: Notify,
}

impl Queue {
    pub fn new(settings: BatchSettings) -> Queue {
        Queue {
            spans: Mutex::new(Vec::with_capacity(settings.max_export_batch_size)),
            settings,
            dropped: AtomicU64::new(0),
            batch_full: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SpanRecord>> {
        self.spans.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn push(&self, span: SpanRecord) {
        let mut spans = self.lock();
        if spans.len() >= self.settings.max_queue_size {
            drop(spans);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        spans.push(span);
        let full = spans.len() == self.settings.max_export_batch_size;
        drop(spans);
        if full {
            self.batch_full.notify_one();
        }
    }

    /// Up to one batch, oldest first (nothing allocated when the queue is empty).
    pub(super) fn take_batch(&self) -> Vec<SpanRecord> {
        let mut spans = self.lock();
        let size = self.settings.max_export_batch_size;
        if spans.is_empty() {
            Vec::new()
        } else if spans.len() <= size {
            std::mem::replace(&mut *spans, Vec::with_capacity(size))
        } else {
            spans.drain(..size).collect()
        }
    }
}

/// What the process asks of the exporting task; the answer comes on the `mpsc` sender once the
/// spans queued before the request have been sent (or given up on).
pub enum Control {
    Flush(mpsc::Sender<()>),
    Shutdown(mpsc::Sender<()>),
}

/// Exports until told to stop (or until every [`Control`] sender is gone).
pub async fn run(
    queue: std::sync::Arc<Queue>,
    exporter: OtlpExporter,
    mut control: channel::UnboundedReceiver<Control>,
) {
    let mut failing = false;
    let mut dropped_reported = 0;
    loop {
        let request = tokio::select! {
            () = tokio::time::sleep(queue.settings.schedule_delay) => None,
            () = queue.batch_full.notified() => None,
            request = control.recv() => Some(request),
        };
        // What is queued now, and no more: under load the queue refills while this sends.
        for _ in 0..queue.settings.batches() {
            let batch = queue.take_batch();
            if batch.is_empty() {
                break;
            }
            match exporter.send(&batch).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("the trace collector takes spans again");
                }
                Ok(()) => {}
                // Once per outage, not once per batch.
                Err(reason) if !failing => {
                    failing = true;
                    tracing::warn!(%reason, spans = batch.len(), "cannot export spans; they are dropped until the collector answers");
                }
                Err(_) => {}
            }
        }
        let dropped = queue.dropped.load(Ordering::Relaxed);
        if dropped > dropped_reported {
            tracing::warn!(
                dropped = dropped - dropped_reported,
                "the span queue was full (OTEL_BSP_MAX_QUEUE_SIZE); spans were dropped"
            );
            dropped_reported = dropped;
        }
        match request {
            None => {}
            Some(Some(Control::Flush(done))) => {
                let _ = done.send(());
            }
            Some(Some(Control::Shutdown(done))) => {
                let _ = done.send(());
                return;
            }
            Some(None) => return,
        }
    }
}

/// How long a flush may take: each of the batches a full queue holds, sent within the export
/// timeout.
pub fn flush_limit(settings: &BatchSettings, export_timeout: Duration) -> Duration {
    export_timeout.saturating_mul(u32::try_from(settings.batches()).unwrap_or(u32::MAX)) + Duration::from_secs(1)
}
