//! The batch span processor: finished spans wait in a bounded queue and are exported in batches
//! by one task on the exporter's runtime, every `OTEL_BSP_SCHEDULE_DELAY` or as soon as a batch
//! is full, as the OpenTelemetry specification's batching processor does. A request thread
//! writes its span's OTLP bytes and appends them to the queue (one short lock); it wakes the
//! exporter once per full batch, never per span. A full queue drops spans and says how many,
//! instead of slowing the service.
//!
//! Why bytes and not the records: a record's strings and vectors are then freed on the thread
//! that made them, as the span ends, and only whole batches cross to the exporter's thread.
//! Queued records were freed there, tens of milliseconds later, by the thousand. Two paired
//! runs of the full-path benchmark, every span exported, the two builds side by side: bytes
//! against records about 1.04× and 1.07× the throughput at concurrency 16, 1.06× and 1.0× at 64.
//!
//! A sent batch's buffer comes back ([`Queue::recycle`]) for a later batch to fill. Allocated
//! afresh per batch (hundreds of KB, 40 a second per service under the full-path load) and freed
//! on the exporting thread, the buffers were pages the allocator kept for a while after each
//! free: the exporting orders-mcp's peak RSS was 36-40 MB against 25 MB with tracing off, and
//! 25 MB exporting when mimalloc was told to return freed pages at once
//! (`MIMALLOC_PURGE_DELAY=0`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use tokio::sync::{Notify, mpsc as channel};
use tokio::time::Instant;

use super::encode;
use super::export::{Failure, OtlpExporter, Retry};
use super::settings::BatchSettings;
use super::span_record::SpanRecord;

pub struct Queue {
    state: Mutex<State>,
    settings: BatchSettings,
    dropped: AtomicU64,
    batch_full: Notify,
}

/// Spans written as OTLP ([`encode::span_field`]), a batch at a time.
#[derive(Default)]
pub struct Batch {
    pub spans: Vec<u8>,
    pub count: usize,
}

#[derive(Default)]
struct State {
    /// Full batches, oldest first, then the one being filled.
    full: VecDeque<Batch>,
    filling: Batch,
    /// Spans in all of them.
    queued: usize,
    /// Emptied buffers of sent batches, for the next batches to fill.
    spare: Vec<Vec<u8>>,
}

/// Sent batches' buffers kept for reuse: one for the batch that fills while another is sent,
/// one more for a flush that takes a part-filled batch.
const SPARE_BUFFERS: usize = 2;

thread_local! {
    /// A span's bytes are written here, outside the queue's lock.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Queue {
    pub fn new(settings: BatchSettings) -> Queue {
        Queue { state: Mutex::new(State::default()), settings, dropped: AtomicU64::new(0), batch_full: Notify::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn push(&self, span: &SpanRecord) {
        // The thread's scratch buffer; a new one where there is none (a span ending while its
        // thread is torn down, after the thread-local is gone).
        let pushed = SCRATCH.try_with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.push_written(span, &mut scratch),
            Err(_) => self.push_written(span, &mut Vec::new()),
        });
        if pushed.is_err() {
            self.push_written(span, &mut Vec::new());
        }
    }

    /// Writes `span` into `scratch`, then appends it to the batch being filled.
    fn push_written(&self, span: &SpanRecord, scratch: &mut Vec<u8>) {
        scratch.clear();
        encode::span_field(span, scratch);
        let mut state = self.lock();
        if state.queued >= self.settings.max_queue_size {
            drop(state);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.filling.spans.extend_from_slice(scratch);
        state.filling.count += 1;
        state.queued += 1;
        if state.filling.count == self.settings.max_export_batch_size {
            // A sent batch's buffer, else a new one about as long as this batch.
            let spans = state.spare.pop().unwrap_or_else(|| Vec::with_capacity(state.filling.spans.len()));
            let next = Batch { spans, count: 0 };
            let full = std::mem::replace(&mut state.filling, next);
            state.full.push_back(full);
            drop(state);
            self.batch_full.notify_one();
        }
    }

    /// The oldest full batch, else the one being filled (empty when nothing is queued).
    pub(super) fn take_batch(&self) -> Batch {
        let mut state = self.lock();
        let batch = match state.full.pop_front() {
            Some(batch) => batch,
            None if state.filling.count == 0 => Batch::default(),
            None => {
                let spans = state.spare.pop().unwrap_or_default();
                std::mem::replace(&mut state.filling, Batch { spans, count: 0 })
            }
        };
        state.queued -= batch.count;
        batch
    }

    /// Spans waiting.
    fn queued(&self) -> usize {
        self.lock().queued
    }

    /// Takes back a sent batch's buffer for a later batch to fill (or frees it, when enough are
    /// kept already: after the lock is released).
    pub(super) fn recycle(&self, mut spans: Vec<u8>) {
        spans.clear();
        let mut state = self.lock();
        if state.spare.len() < SPARE_BUFFERS {
            state.spare.push(spans);
        }
    }
}

/// What the process asks of the exporting task; the answer comes on the `mpsc` sender once the
/// spans queued before the request have been sent (or given up on).
pub enum Control {
    Flush(mpsc::Sender<()>),
    Shutdown(mpsc::Sender<()>),
}

/// How a batch the collector could not take for a transient reason is sent again:
/// opentelemetry-specification `protocol/exporter.md`, "Transient errors MUST be handled with a
/// retry strategy. This retry strategy MUST implement an exponential back-off with jitter".
#[derive(Clone, Copy, Debug)]
pub struct Retries {
    /// The first back-off; each one after is twice the one before, up to `longest`.
    pub first: Duration,
    pub longest: Duration,
    /// How long one batch is tried, from its first attempt: no retry starts whose wait would
    /// end later. A collector's longer Retry-After gives the batch up.
    pub budget: Duration,
}

impl Retries {
    /// 1 s, doubling, at most 5 s a wait (opentelemetry-java's OTLP exporter also starts at 1 s
    /// and waits 5 s at most), and 30 s a batch: three default export timeouts, long enough for
    /// a collector's restart, short enough that a dead one costs each batch half a minute while
    /// the bounded queue keeps taking (and, full, dropping) spans.
    pub const DEFAULT: Retries =
        Retries { first: Duration::from_secs(1), longest: Duration::from_secs(5), budget: Duration::from_secs(30) };

    /// The wait after the `failures`-th failed attempt (1, 2, ...) without a Retry-After:
    /// between half and all of the back-off, at random, so that services restarted together do
    /// not retry together.
    fn backoff(&self, failures: u32) -> Duration {
        let doubled = self.first.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)));
        doubled.min(self.longest).mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// A flush or shutdown request, and until when it is worked on.
struct Asked {
    /// `None`: every sender is gone, which is a shutdown nobody waits for.
    request: Option<Control>,
    deadline: Instant,
}

/// The exporting task.
struct Task {
    queue: Arc<Queue>,
    exporter: OtlpExporter,
    retries: Retries,
    watch: Watch,
    /// Whether the last batch failed: warn once per outage.
    failing: bool,
    /// Spans of the batches that failed in this round and, while a request waits, since it
    /// came.
    lost: usize,
}

/// The requests to the task, watched for while it waits on the collector.
struct Watch {
    control: channel::UnboundedReceiver<Control>,
    /// How long a flush or shutdown may take.
    limit: Duration,
    /// A request that came while exporting: answered once what was queued before it is sent.
    asked: Option<Asked>,
}

/// Exports until told to stop (or until every [`Control`] sender is gone).
pub async fn run(
    queue: Arc<Queue>,
    exporter: OtlpExporter,
    control: channel::UnboundedReceiver<Control>,
    retries: Retries,
    limit: Duration,
) {
    let watch = Watch { control, limit, asked: None };
    let mut task = Task { queue, exporter, retries, watch, failing: false, lost: 0 };
    let mut dropped_reported = 0;
    loop {
        if task.watch.asked.is_none() {
            task.lost = 0;
            tokio::select! {
                () = tokio::time::sleep(task.queue.settings.schedule_delay) => {}
                () = task.queue.batch_full.notified() => {}
                request = task.watch.control.recv() => task.watch.ask(request),
            }
        }
        // A request that comes during this round is answered after the next one, which sends
        // what was queued before it.
        let answering = task.watch.asked.is_some();
        task.export_queued().await;
        let dropped = task.queue.dropped.load(Ordering::Relaxed);
        if dropped > dropped_reported {
            tracing::warn!(
                dropped = dropped - dropped_reported,
                "the span queue was full (OTEL_BSP_MAX_QUEUE_SIZE); spans were dropped"
            );
            dropped_reported = dropped;
        }
        match task.watch.asked.take_if(|_| answering).map(|asked| asked.request) {
            None => {}
            Some(Some(Control::Flush(done))) => {
                let _ = done.send(());
            }
            Some(request) => {
                let dropped = task.lost + task.queue.queued();
                if dropped > 0 {
                    tracing::warn!(dropped, "stopping before the collector took every span; the rest are dropped");
                }
                if let Some(Control::Shutdown(done)) = request {
                    let _ = done.send(());
                }
                return;
            }
        }
    }
}

impl Task {
    /// Sends what is queued now, and no more: under load the queue refills while this sends.
    /// While a flush or shutdown waits, stops at its deadline or at the first batch the
    /// collector did not take (after its retries): the next would most likely fail too, and the
    /// time is the waiting process's. What a flush leaves stays queued; a shutdown drops it.
    async fn export_queued(&mut self) {
        for _ in 0..self.queue.settings.batches() {
            if self.watch.asked.as_ref().is_some_and(|asked| self.lost > 0 || Instant::now() >= asked.deadline) {
                break;
            }
            let Batch { spans, count } = self.queue.take_batch();
            if count == 0 {
                break;
            }
            let sent = self.send(&spans).await;
            self.queue.recycle(spans);
            if sent.is_err() {
                self.lost += count;
            }
            match sent {
                Ok(()) if self.failing => {
                    self.failing = false;
                    tracing::info!("the trace collector takes spans again");
                }
                Ok(()) => {}
                // Once per outage, not once per batch.
                Err(failure) if !self.failing => {
                    self.failing = true;
                    tracing::warn!(reason = %failure.reason, spans = count, "cannot export spans; they are dropped until the collector answers");
                }
                Err(_) => {}
            }
        }
    }

    /// Sends one batch, and again after a transient failure, within the retry budget and the
    /// deadline of a flush or shutdown.
    async fn send(&mut self, spans: &[u8]) -> Result<(), Failure> {
        let give_up = Instant::now() + self.retries.budget;
        let mut failures = 0;
        loop {
            let failure = match self.watch.watching(self.exporter.send(spans)).await {
                Some(Ok(())) => return Ok(()),
                Some(Err(failure)) => failure,
                None => return Err(past_deadline()),
            };
            failures += 1;
            let wait = match failure.retry {
                Retry::Never => return Err(failure),
                Retry::Backoff => self.retries.backoff(failures),
                Retry::After(wait) => wait,
            };
            let deadline = self.watch.asked.as_ref().map_or(give_up, |asked| asked.deadline.min(give_up));
            // `wait` may be the collector's: checked, an instant plus a duration can overflow.
            let past = Instant::now().checked_add(wait).is_none_or(|end| end > deadline);
            if past || self.watch.watching(tokio::time::sleep(wait)).await.is_none() {
                return Err(failure);
            }
        }
    }
}

impl Watch {
    fn ask(&mut self, request: Option<Control>) {
        self.asked = Some(Asked { request, deadline: Instant::now() + self.limit });
    }

    /// Awaits `work`, taking a flush or shutdown request that comes meanwhile; `None` when the
    /// deadline of such a request passes first.
    async fn watching<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        loop {
            match &self.asked {
                Some(asked) => return tokio::time::timeout_at(asked.deadline, &mut work).await.ok(),
                None => tokio::select! {
                    done = &mut work => return Some(done),
                    request = self.control.recv() => self.ask(request),
                },
            }
        }
    }
}

fn past_deadline() -> Failure {
    Failure { reason: "no answer before the flush or shutdown deadline".into(), retry: Retry::Never }
}

/// How long a flush or shutdown may take, however large the queue and however slow the
/// collector: Azure Container Apps kills a container 30 s after asking it to stop (the default
/// `terminationGracePeriodSeconds`: "Defaults to 30 seconds"), and the service drains its
/// requests first. 15 s is one default export timeout (10 s) with the first two back-offs
/// (at most 1 s and 2 s), and leaves the other half of the grace period to the drain.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, UNIX_EPOCH};

    use axum::body::Body;
    use axum::http::StatusCode;
    use opentelemetry::trace::{SpanKind, Status};
    use opentelemetry_proto::tonic::trace::v1::ScopeSpans;
    use prost::Message;

    use super::*;
    use crate::telemetry::test_collector::{Answer, Collector};
    use crate::telemetry::trace_context::SpanIds;

    fn span(name: &'static str) -> SpanRecord {
        SpanRecord {
            ids: SpanIds { trace_id: [1; 16], span_id: [2; 8] },
            parent: None,
            parent_is_remote: false,
            sampled: true,
            trace_state: None,
            has_children: false,
            name: Cow::Borrowed(name),
            kind: SpanKind::Internal,
            start: UNIX_EPOCH,
            end: UNIX_EPOCH,
            attributes: Vec::new(),
            dropped_attributes: 0,
            events: Vec::new(),
            dropped_events: 0,
            status: Status::Unset,
        }
    }

    fn names(batch: &Batch) -> Vec<String> {
        let spans = ScopeSpans::decode(&batch.spans[..]).unwrap().spans;
        assert_eq!(spans.len(), batch.count, "the count is the spans written");
        spans.into_iter().map(|s| s.name).collect()
    }

    #[test]
    fn spans_leave_in_batches_oldest_first_and_a_full_queue_drops_and_counts() {
        let settings =
            BatchSettings { schedule_delay: Duration::from_secs(5), max_queue_size: 4, max_export_batch_size: 2 };
        let queue = Queue::new(settings);
        for name in ["a", "b", "c", "d", "e", "f"] {
            queue.push(&span(name));
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 2, "the queue holds 4; two were dropped");
        assert_eq!(names(&queue.take_batch()), ["a", "b"]);
        queue.push(&span("g"));
        assert_eq!(names(&queue.take_batch()), ["c", "d"]);
        assert_eq!(names(&queue.take_batch()), ["g"], "then the batch still filling");
        assert_eq!(queue.take_batch().count, 0);
        assert!(queue.take_batch().spans.is_empty());
    }

    #[test]
    fn a_sent_batch_buffer_is_filled_again() {
        let settings =
            BatchSettings { schedule_delay: Duration::from_secs(5), max_queue_size: 8, max_export_batch_size: 2 };
        let queue = Queue::new(settings);
        for name in ["a", "b", "c"] {
            queue.push(&span(name));
        }
        let sent = queue.take_batch();
        assert_eq!(names(&sent), ["a", "b"]);
        let buffer = sent.spans.as_ptr();
        queue.recycle(sent.spans);
        assert_eq!(queue.lock().spare.iter().map(|b| (b.as_ptr(), b.len())).collect::<Vec<_>>(), [(buffer, 0)]);
        // "c", "d" fill a batch; the next one fills the buffer that came back.
        for name in ["d", "e", "f"] {
            queue.push(&span(name));
        }
        assert!(queue.lock().spare.is_empty(), "taken by the batch after the full one");
        assert_eq!(names(&queue.take_batch()), ["c", "d"]);
        let again = queue.take_batch();
        assert_eq!(names(&again), ["e", "f"], "the buffer came back empty");
        assert_eq!(again.spans.as_ptr(), buffer, "and was filled again, not allocated anew");
    }

    /// Retries as the default ones do, a thousand times faster.
    const FAST: Retries =
        Retries { first: Duration::from_millis(1), longest: Duration::from_millis(5), budget: Duration::from_secs(30) };

    fn queue(max_queue_size: usize, max_export_batch_size: usize) -> Arc<Queue> {
        Arc::new(Queue::new(BatchSettings {
            schedule_delay: Duration::from_secs(60),
            max_queue_size,
            max_export_batch_size,
        }))
    }

    /// The exporting task, on the test's runtime, sending `queue`'s spans to `collector`.
    fn start(
        collector: &Collector,
        queue: &Arc<Queue>,
        retries: Retries,
        limit: Duration,
    ) -> channel::UnboundedSender<Control> {
        let exporter = OtlpExporter::new(&collector.settings(Duration::from_secs(10), queue.settings)).unwrap();
        let (control, requests) = channel::unbounded_channel();
        tokio::spawn(run(queue.clone(), exporter, requests, retries, limit));
        control
    }

    /// Asks for `request` and waits for the answer (a minute at most).
    async fn ask(control: &channel::UnboundedSender<Control>, request: fn(mpsc::Sender<()>) -> Control) {
        let (done, answer) = mpsc::channel();
        control.send(request(done)).unwrap();
        let answered = tokio::task::spawn_blocking(move || answer.recv_timeout(Duration::from_secs(60)));
        answered.await.unwrap().expect("an answer");
    }

    fn sent(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[tokio::test]
    async fn a_transient_failure_sends_the_same_batch_again_and_others_do_not() {
        let answers = [503, 429, 502, 504, 400].map(Answer::status);
        let collector = Collector::start(answers).await;
        let queue = queue(8, 8);
        let control = start(&collector, &queue, FAST, Duration::from_secs(30));
        for name in ["a", "b"] {
            queue.push(&span(name));
        }
        ask(&control, Control::Flush).await;
        let ab = sent(&["a", "b"]);
        assert_eq!(collector.received(), vec![ab.clone(); 5], "503, 429, 502, 504, then taken");
        // 400: dropped at once, and the next batch is sent.
        queue.push(&span("c"));
        ask(&control, Control::Flush).await;
        queue.push(&span("d"));
        ask(&control, Control::Flush).await;
        assert_eq!(collector.received()[5..], [sent(&["c"]), sent(&["d"])]);
    }

    #[tokio::test]
    async fn the_collectors_retry_after_is_honoured() {
        let headers = vec![("retry-after", "1".to_string())];
        let collector =
            Collector::start([Answer::Status(StatusCode::SERVICE_UNAVAILABLE, headers, Body::empty())]).await;
        let queue = queue(8, 8);
        let control = start(&collector, &queue, FAST, Duration::from_secs(30));
        queue.push(&span("a"));
        ask(&control, Control::Flush).await;
        let times = collector.times();
        assert_eq!(times.len(), 2);
        // Not FAST's millisecond: the second second the collector asked for.
        assert!(times[1] - times[0] >= Duration::from_secs(1), "{:?}", times[1] - times[0]);
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_budget_gives_the_batch_up() {
        // The longest delta-seconds there is: past any clock, so it must not be added to one.
        let after = vec![("retry-after", u64::MAX.to_string())];
        let collector = Collector::start([Answer::Status(StatusCode::TOO_MANY_REQUESTS, after, Body::empty())]).await;
        let queue = queue(8, 8);
        let control = start(&collector, &queue, FAST, Duration::from_secs(30));
        queue.push(&span("a"));
        ask(&control, Control::Flush).await;
        queue.push(&span("b"));
        ask(&control, Control::Flush).await;
        assert_eq!(collector.received(), [sent(&["a"]), sent(&["b"])]);
    }

    #[tokio::test]
    async fn a_batch_is_retried_within_its_budget_while_the_queue_takes_and_drops_spans() {
        let budget = Duration::from_millis(300);
        let collector = Collector::start((0..1000).map(|_| Answer::status(503))).await;
        let queue = queue(4, 2);
        let control = start(&collector, &queue, Retries { budget, ..FAST }, Duration::from_secs(30));
        // A full batch goes at once; while it is retried the queue takes 4 more and drops one.
        for name in ["a", "b"] {
            queue.push(&span(name));
        }
        let retrying = async {
            while collector.received().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), retrying).await.unwrap();
        for name in ["c", "d", "e", "f", "g"] {
            queue.push(&span(name));
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 1);
        // Answered while the collector still fails: the batch was given up.
        ask(&control, Control::Flush).await;
        let received = collector.received();
        let tries = received.iter().filter(|r| **r == sent(&["a", "b"])).count();
        // The waits are at least 0.5, 1, 2, then 2.5 ms: 121 in 300 ms at most, 122 attempts.
        assert!((2..=122).contains(&tries), "sent {tries} times: {received:?}");
    }

    #[tokio::test]
    async fn a_flush_does_not_back_off_past_its_deadline() {
        let collector = Collector::start((0..10).map(|_| Answer::status(503))).await;
        let queue = queue(8, 8);
        let slow = Retries {
            first: Duration::from_secs(20),
            longest: Duration::from_secs(20),
            budget: Duration::from_secs(60),
        };
        let control = start(&collector, &queue, slow, Duration::from_millis(200));
        queue.push(&span("a"));
        let started = std::time::Instant::now();
        ask(&control, Control::Flush).await;
        // A back-off is 10 s at least: the flush gave the batch up instead (its deadline is 0.2 s).
        assert!(started.elapsed() < Duration::from_secs(9), "{:?}", started.elapsed());
        assert_eq!(collector.received().len(), 1);
    }

    #[test]
    fn the_back_off_doubles_up_to_the_longest_with_jitter() {
        let retries = Retries::DEFAULT;
        for (failures, full) in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0), (100, 5.0)] {
            let waits: Vec<f64> = (0..50).map(|_| retries.backoff(failures).as_secs_f64()).collect();
            assert!(waits.iter().all(|w| (full / 2.0..=full).contains(w)), "{failures}: {waits:?}");
            assert!(waits.iter().any(|w| *w != waits[0]), "jitter: {waits:?}");
        }
    }

    #[tokio::test]
    async fn a_shutdown_stops_at_its_deadline_and_says_how_many_spans_it_drops() {
        // A collector that takes the connection and never answers, a 10 s export timeout, and
        // four full batches: sent one after another they would take 40 s.
        let collector = Collector::start([Answer::Never]).await;
        let queue = queue(8, 2);
        let lines = Lines::default();
        let logs = tracing_subscriber::fmt().with_writer(lines.clone()).with_ansi(false).finish();
        let _logging = tracing::subscriber::set_default(logs);
        let control = start(&collector, &queue, FAST, Duration::from_millis(300));
        for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            queue.push(&span(name));
        }
        let started = std::time::Instant::now();
        ask(&control, Control::Shutdown).await;
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "within the deadline, not the timeout: {:?}",
            started.elapsed()
        );
        assert_eq!(collector.received(), [sent(&["a", "b"])], "nothing sent after the first failure");
        let text = lines.text();
        assert!(text.contains("dropped=8"), "the hung batch and the three after it: {text}");
    }

    /// Log lines written by a test's subscriber.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
        type Writer = Lines;

        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }
}
