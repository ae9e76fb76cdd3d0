//! An error as one line with its causes: many errors (hyper's, reqwest's) say only their kind
//! in `Display` and keep the reason (the OS error, the TLS alert) in `source()`.

/// `error: cause: cause's cause …`
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        line.push_str(": ");
        line.push_str(&e.to_string());
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error saying `text`, caused by `cause`.
    #[derive(Debug)]
    struct Failed(&'static str, Option<Box<Failed>>);

    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Failed {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_follow_the_error_in_order() {
        let refused = Failed("connection refused", None);
        let chain = Failed("client error", Some(Box::new(Failed("tcp connect error", Some(Box::new(refused))))));
        assert_eq!(with_causes(&chain), "client error: tcp connect error: connection refused");
        assert_eq!(with_causes(&Failed("alone", None)), "alone");
    }
}
