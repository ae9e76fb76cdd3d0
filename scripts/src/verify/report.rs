//! The table verify prints: one row per check, passed, failed or skipped, with a detail.

/// A check's result: a value to show (and build on), or why it failed.
pub type Check<T> = Result<T, String>;

enum Outcome {
    Pass(String),
    Fail(String),
    Skip(String),
}

#[derive(Default)]
pub struct Report {
    results: Vec<(String, Outcome)>,
}

impl Report {
    /// Records a check; the value when it passed, for the checks that build on it.
    pub fn record<T>(&mut self, name: &str, result: Check<T>, detail: impl FnOnce(&T) -> String) -> Option<T> {
        match result {
            Ok(value) => {
                self.results.push((name.to_string(), Outcome::Pass(detail(&value))));
                Some(value)
            }
            Err(why) => {
                self.results.push((name.to_string(), Outcome::Fail(why)));
                None
            }
        }
    }

    pub fn skip(&mut self, name: &str, why: &str) {
        self.results.push((name.to_string(), Outcome::Skip(why.to_string())));
    }

    /// Prints the table; returns the number of failures.
    pub fn print(&self) -> usize {
        println!("\n{:<4} {:<70} detail", "", "check");
        println!("{}", "-".repeat(110));
        let (mut passed, mut failed, mut skipped) = (0, 0, 0);
        for (name, outcome) in &self.results {
            let (mark, detail) = match outcome {
                Outcome::Pass(d) => {
                    passed += 1;
                    ("PASS", d.as_str())
                }
                Outcome::Fail(d) => {
                    failed += 1;
                    ("FAIL", d.as_str())
                }
                Outcome::Skip(d) => {
                    skipped += 1;
                    ("skip", d.as_str())
                }
            };
            println!("{mark:<4} {name:<70} {detail}");
        }
        println!("\n{passed} passed, {failed} failed, {skipped} skipped");
        failed
    }
}

/// A long detail (a header value), cut to fit the table.
pub fn truncate(s: &str) -> String {
    if s.len() > 48 {
        format!("{}…", &s[..s.char_indices().nth(47).map_or(s.len(), |(i, _)| i)])
    } else {
        s.to_string()
    }
}
