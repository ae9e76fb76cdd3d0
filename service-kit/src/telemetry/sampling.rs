//! Whether a span is recorded for export, as the OpenTelemetry SDK specification's built-in
//! samplers decide ("Built-in samplers": AlwaysOn, AlwaysOff, TraceIdRatioBased, ParentBased).

use super::settings::Sampler;

impl Sampler {
    /// `parent`: the parent's sampled flag, for a span that has a parent (local or remote).
    pub(super) fn samples(&self, parent: Option<bool>, trace_id: &[u8; 16]) -> bool {
        match (self, parent) {
            (Sampler::AlwaysOn, _) => true,
            (Sampler::AlwaysOff, _) => false,
            (Sampler::TraceIdRatio(ratio), _) => by_ratio(*ratio, trace_id),
            (
                Sampler::ParentBasedAlwaysOn | Sampler::ParentBasedAlwaysOff | Sampler::ParentBasedTraceIdRatio(_),
                Some(sampled),
            ) => sampled,
            (Sampler::ParentBasedAlwaysOn, None) => true,
            (Sampler::ParentBasedAlwaysOff, None) => false,
            (Sampler::ParentBasedTraceIdRatio(ratio), None) => by_ratio(*ratio, trace_id),
        }
    }
}

/// TraceIdRatioBased decides from the trace id alone, so every service that sees the trace
/// decides alike: the low 8 bytes (the random part W3C Trace Context level 2 specifies) as
/// an integer, against the ratio of 2^63, as the Rust SDK computes it.
fn by_ratio(ratio: f64, trace_id: &[u8; 16]) -> bool {
    let bound = (ratio.clamp(0.0, 1.0) * (1u64 << 63) as f64) as u64;
    let mut low = [0; 8];
    low.copy_from_slice(&trace_id[8..]);
    (u64::from_be_bytes(low) >> 1) < bound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_based_samplers_follow_the_parent_and_ratios_follow_the_trace_id() {
        let low = [0; 16];
        let mut high = [0; 16];
        high[8] = 0xff;
        for sampler in
            [Sampler::ParentBasedAlwaysOn, Sampler::ParentBasedAlwaysOff, Sampler::ParentBasedTraceIdRatio(0.5)]
        {
            assert!(sampler.samples(Some(true), &high) && !sampler.samples(Some(false), &low), "{sampler:?}");
        }
        assert!(Sampler::ParentBasedAlwaysOn.samples(None, &low));
        assert!(!Sampler::ParentBasedAlwaysOff.samples(None, &low));
        assert!(Sampler::AlwaysOn.samples(Some(false), &low) && !Sampler::AlwaysOff.samples(Some(true), &low));
        let half = Sampler::TraceIdRatio(0.5);
        assert!(half.samples(None, &low) && !half.samples(Some(true), &high));
        assert!(!Sampler::TraceIdRatio(0.0).samples(None, &low) && Sampler::TraceIdRatio(1.0).samples(None, &high));
    }
}
