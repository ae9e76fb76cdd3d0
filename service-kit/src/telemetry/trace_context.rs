//! The W3C Trace Context headers (<https://www.w3.org/TR/trace-context/>): reading a caller's
//! `traceparent`/`tracestate` and writing ours. Anything malformed is ignored (the request
//! starts a new trace), as the specification asks of a receiver.

use std::sync::Arc;

use crate::hex;

/// A span's identity in its trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanIds {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

/// What a caller's headers say: its span, whether it sampled it, its vendors' `tracestate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub ids: SpanIds,
    pub sampled: bool,
    pub trace_state: Option<Arc<str>>,
}

/// The trace flag for "sampled" (§3.2.2.5).
const SAMPLED: u8 = 0x01;
/// `tracestate`: at most 32 list members (§3.3.1.1); 512 characters is what the specification
/// asks every vendor to propagate, and the most this one does; longer, entries over 128
/// characters are the first to go (§3.3.1.5).
const MAX_MEMBERS: usize = 32;
const MAX_TRACE_STATE: usize = 512;
const MAX_TRACE_STATE_ENTRY: usize = 128;

/// Parses `traceparent` (§3.2) and, when that is valid, `tracestate` (§3.3; dropped if
/// malformed, the parent kept; cut to 512 characters).
pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Remote> {
    // §3.2.4: a version we do not know is read as version 00 if its first 55 characters have
    // that shape and, when longer, a `-` follows them; `ff` is never valid.
    let version = traceparent.get(..2)?;
    let fields = match version {
        "00" if traceparent.len() == 55 => traceparent,
        "00" | "ff" => return None,
        _ if lower_hex(version) && traceparent.len() >= 55 => match traceparent.as_bytes().get(55) {
            None | Some(b'-') => traceparent.get(..55)?,
            Some(_) => return None,
        },
        _ => return None,
    };
    let mut parts = fields.split('-');
    let (_, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let trace_id: [u8; 16] = hex_bytes(trace)?;
    let span_id: [u8; 8] = hex_bytes(parent)?;
    let [flags] = hex_bytes::<1>(flags)?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    let trace_state = tracestate.and_then(trace_state);
    Some(Remote { ids: SpanIds { trace_id, span_id }, sampled: flags & SAMPLED != 0, trace_state })
}

/// `traceparent` for a span we send a request from (version 00).
pub fn traceparent(ids: SpanIds, sampled: bool) -> String {
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    hex::push(&mut out, &ids.trace_id);
    out.push('-');
    hex::push(&mut out, &ids.span_id);
    out.push_str(if sampled { "-01" } else { "-00" });
    out
}

/// A lowercase hex digit's value (§3.2.2: uppercase is not valid).
fn hex_digit(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    }
}

fn lower_hex(s: &str) -> bool {
    s.bytes().all(|b| hex_digit(b).is_some())
}

/// Exactly `2 * N` lowercase hex digits.
fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

/// A caller's `tracestate` as it is propagated: unchanged when valid and at most 512 characters
/// long; longer, its members without spaces between them, cut to 512 characters as §3.3.1.5
/// says: "Entries larger than 128 characters long SHOULD be removed first. Then entries SHOULD be
/// removed starting from the end of tracestate." `None` if malformed.
fn trace_state(s: &str) -> Option<Arc<str>> {
    let s = s.trim();
    let mut members = members(s)?;
    if s.len() <= MAX_TRACE_STATE {
        return Some(Arc::from(s));
    }
    // The length of the members joined by commas ("SHOULD NOT include optional white space").
    let joined = |members: &[&str]| members.iter().map(|m| m.len()).sum::<usize>() + members.len().saturating_sub(1);
    for longer_than in [MAX_TRACE_STATE_ENTRY, 0] {
        let mut i = members.len();
        while joined(&members) > MAX_TRACE_STATE && i > 0 {
            i -= 1;
            if members[i].len() > longer_than {
                members.remove(i);
            }
        }
    }
    Some(Arc::from(members.join(",")))
}

/// §3.3.1: a comma-separated list of `key=value` members (empty members allowed), keys
/// `lcalpha *(lcalpha / DIGIT / "_" / "-" / "*" / "/")` (at most 256) or `tenant@system`,
/// values of printable ASCII without `,` and `=` (at most 256, not ending in a space). `None` if
/// it is not that, or has more than 32 members (§3.3.1.1) or none.
fn members(s: &str) -> Option<Vec<&str>> {
    let mut members = Vec::new();
    // Stops at the first bad member, or the 33rd: a long header is not read to its end.
    for member in s.split(',').map(|m| m.trim_matches([' ', '\t'])).filter(|m| !m.is_empty()) {
        let valid = member.split_once('=').is_some_and(|(key, value)| valid_key(key) && valid_value(value));
        if !valid || members.len() == MAX_MEMBERS {
            return None;
        }
        members.push(member);
    }
    (!members.is_empty()).then_some(members)
}

fn valid_key(key: &str) -> bool {
    let simple = |k: &str, max: usize, first_digit_ok: bool| {
        let mut bytes = k.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || (first_digit_ok && b.is_ascii_digit()));
        first_ok
            && k.len() <= max
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/'))
    };
    match key.split_once('@') {
        None => simple(key, 256, false),
        Some((tenant, system)) => simple(tenant, 241, true) && simple(system, 14, false),
    }
}

fn valid_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && !value.ends_with(' ')
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_traceparent_is_read_and_written_back_unchanged() {
        let remote = parse(PARENT, Some("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE")).unwrap();
        assert!(remote.sampled);
        assert_eq!(hex::encode(&remote.ids.trace_id), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(remote.trace_state.as_deref(), Some("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"));
        assert_eq!(traceparent(remote.ids, true), PARENT);
        let unsampled = parse(&PARENT.replace("-01", "-00"), None).unwrap();
        assert!(!unsampled.sampled);
    }

    #[test]
    fn malformed_traceparents_start_a_new_trace() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", // uppercase (§3.2.2.3)
            "00-00000000000000000000000000000000-b7ad6b7169203331-01", // all-zero trace id
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", // all-zero parent id
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", // version ff
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", // 00 is exactly 55
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x", // no `-` after 55
            "0x-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(parse(bad, None), None, "{bad:?}");
        }
        // A later version is read as far as version 00 goes (§3.2.4).
        assert!(parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-comes", None).is_some());
    }

    #[test]
    fn a_malformed_tracestate_is_dropped_and_the_parent_kept() {
        for bad in ["=x", "Upper=1", "k=", "k=a,b", "k=a=b", &"k=v,".repeat(33), &format!("k={}", "v".repeat(600))] {
            let remote = parse(PARENT, Some(bad)).unwrap();
            assert_eq!(remote.trace_state, None, "{bad:?}");
        }
        for good in ["k=v", "tenant@vendor=x", "1tenant@vendor=x", "a=1,,b=2"] {
            assert_eq!(parse(PARENT, Some(good)).unwrap().trace_state.as_deref(), Some(good));
        }
    }

    #[test]
    fn an_over_long_tracestate_loses_its_long_entries_then_its_last_ones() {
        let state = |s: &str| parse(PARENT, Some(s)).unwrap().trace_state.as_deref().map(str::to_owned);
        // 16 entries of 31 characters, commas between: 511, kept as sent.
        let entries: Vec<String> = (0..20).map(|i| format!("k{i:02}={}", "v".repeat(27))).collect();
        let fits = entries[..16].join(",");
        assert_eq!(fits.len(), 511);
        assert_eq!(state(&fits), Some(fits.clone()));
        // Two more do not fit: whole entries go from the end, the first 16 stay.
        assert_eq!(state(&entries[..18].join(",")), Some(fits.clone()));
        // Entries over 128 characters go first, from the end, only as many as needed.
        let long = |key: &str| format!("{key}={}", "x".repeat(200));
        let [e0, e1, e2] = [&entries[0], &entries[1], &entries[2]];
        let sent = [&long("big1"), e0, &long("big2"), e1, &long("big3"), e2].map(String::as_str).join(",");
        let kept = [&long("big1"), e0, &long("big2"), e1, e2].map(String::as_str).join(",");
        assert_eq!(state(&sent), Some(kept));
        let sent = format!("{},{fits}", long("big"));
        assert_eq!(state(&sent), Some(fits.clone()));
        // Spaces around the commas do not count towards the 512 (§3.3.1.5: "SHOULD NOT include
        // optional white space"): kept whole, written without them.
        assert_eq!(state(&entries[..16].join(" , ")), Some(fits));
    }
}
