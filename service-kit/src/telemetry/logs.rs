//! JSON log lines that lead to their trace: when spans are exported, a line written inside a
//! span starts with that span's `trace_id` and `span_id` (the W3C hex forms every trace viewer
//! and Application Insights search by).

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::span_record::SpanRecord;
use crate::hex;

/// Wraps a JSON event format, adding the trace and span ids in front.
pub struct WithTraceIds<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let ids = ctx.lookup_current().and_then(|span| {
            let extensions = span.extensions();
            let record = extensions.get::<SpanRecord>()?;
            Some((hex::encode(&record.ids.trace_id), hex::encode(&record.ids.span_id)))
        });
        let Some((trace_id, span_id)) = ids else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::trace::v1::ScopeSpans;
    use prost::Message;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::batch::Queue;
    use crate::telemetry::layer::{OtlpLayer, suppress_on_this_thread};
    use crate::telemetry::settings::{BatchSettings, Sampler};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The service's JSON log format with the span recorder, as `init` installs them.
    fn subscriber(queue: &Arc<Queue>, lines: &Lines) -> impl Subscriber + Send + Sync + use<> {
        let lines = lines.clone();
        let logs = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .map_event_format(WithTraceIds)
            .with_writer(move || lines.clone());
        tracing_subscriber::registry().with(logs).with(OtlpLayer::new(Sampler::AlwaysOn, queue.clone()))
    }

    #[test]
    fn a_json_log_line_inside_an_exported_span_names_that_span_and_its_trace() {
        let queue = Arc::new(Queue::new(BatchSettings::default()));
        let lines = Lines::default();
        tracing::subscriber::with_default(subscriber(&queue, &lines), || {
            tracing::info!("outside any span");
            let _request = tracing::info_span!("request").entered();
            tracing::info!(order = "ORD-001", "inside");
        });
        // The queued bytes are `ScopeSpans.spans` fields: read them as that message.
        let spans = ScopeSpans::decode(&queue.take_batch().spans[..]).unwrap().spans;
        let [request] = &spans[..] else { panic!("one span exported: {spans:?}") };
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let logged: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let [outside, inside] = &logged[..] else { panic!("two lines: {text}") };
        assert_eq!(outside.get("trace_id"), None, "no span, no ids: {outside}");
        assert_eq!(inside["trace_id"], hex::encode(&request.trace_id), "{inside}");
        assert_eq!(inside["span_id"], hex::encode(&request.span_id), "{inside}");
        assert_eq!(inside["order"], "ORD-001", "the line is otherwise the same JSON: {inside}");
        let event = &request.events[0];
        assert_eq!(event.name, "inside", "the log line is also an event of the span");
    }

    #[test]
    fn the_exporters_own_threads_record_no_spans() {
        // At RUST_LOG=trace the HTTP client sending a batch makes spans; recorded, they would be
        // exported in the next batch, whose sending makes more, without end.
        let queue = Arc::new(Queue::new(BatchSettings::default()));
        let lines = Lines::default();
        let subscriber = subscriber(&queue, &lines);
        std::thread::spawn(move || {
            suppress_on_this_thread();
            tracing::subscriber::with_default(subscriber, || {
                let _send = tracing::info_span!("hyper.send").entered();
                tracing::info!("sent");
            });
        })
        .join()
        .unwrap();
        assert_eq!(queue.take_batch().count, 0);
        assert!(String::from_utf8(lines.0.lock().unwrap().clone()).unwrap().contains("sent"), "it still logs");
    }
}
