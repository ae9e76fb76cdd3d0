//! Typed settings from environment variables, with every problem reported at once.
//!
//! Each service's `configuration.rs` reads its variables through [`Env`] and calls
//! [`Env::finish`]: a missing or malformed value is one line naming the variable, what was
//! wrong and what is expected, so a start-up failure is fixed in one go.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// All the problems found in a service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub problems: Vec<String>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

/// A source of settings: the process environment, or a map in tests.
pub struct Env {
    vars: HashMap<String, String>,
    problems: Vec<String>,
    /// Every variable name looked up, so a test can prove a deployment file sets only names
    /// the service actually reads (a renamed setting then breaks the test, not the demo).
    read: NamesRead,
}

/// The variable names an [`Env`] was asked for; outlives the `Env` (which settings constructors
/// consume), so a test can inspect it afterwards.
#[derive(Clone, Default)]
pub struct NamesRead(std::rc::Rc<std::cell::RefCell<std::collections::BTreeSet<String>>>);

impl NamesRead {
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.0.borrow().clone()
    }
}

impl Env {
    pub fn from_process() -> Self {
        Env::from_map(std::env::vars())
    }

    pub fn from_map<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Env {
            vars: vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            problems: Vec::new(),
            read: Default::default(),
        }
    }

    /// A handle on the names looked up, now and later.
    pub fn names_read(&self) -> NamesRead {
        self.read.clone()
    }

    /// The raw value; empty values count as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        self.read.0.borrow_mut().insert(name.to_string());
        self.vars.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    pub fn string(&mut self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_string())
    }

    pub fn optional<T: FromStr>(&mut self, name: &str, expected: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        let raw = self.get(name)?;
        match raw.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(format!("{name}={raw:?} is not {expected}: {e}"));
                None
            }
        }
    }

    pub fn parse<T: FromStr>(&mut self, name: &str, default: T, expected: &str) -> T
    where
        T::Err: fmt::Display,
    {
        self.optional(name, expected).unwrap_or(default)
    }

    /// A required value; records a problem (and returns `None`) when missing or malformed.
    pub fn required<T: FromStr>(&mut self, name: &str, expected: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        if self.get(name).is_none() {
            self.problems.push(format!("{name} is not set: expected {expected}"));
            return None;
        }
        self.optional(name, expected)
    }

    /// Seconds, as a [`Duration`].
    pub fn seconds(&mut self, name: &str, default_secs: u64) -> Duration {
        Duration::from_secs(self.parse(name, default_secs, "a whole number of seconds"))
    }

    pub fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => true,
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => false,
            Some(v) => {
                self.problems.push(format!("{name}={v:?} is not a boolean: expected true or false"));
                default
            }
        }
    }

    /// One of `choices` (case-insensitive).
    pub fn choice(&mut self, name: &str, choices: &[&str], default: &str) -> String {
        let value = self.string(name, default).to_ascii_lowercase();
        if !choices.contains(&value.as_str()) {
            self.problems.push(format!("{name}={value:?} is not one of: {}", choices.join(", ")));
            return default.to_string();
        }
        value
    }

    /// Records a problem found while combining values.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// `Ok` if every value read was valid.
    pub fn finish(self) -> Result<(), SettingsError> {
        if self.problems.is_empty() { Ok(()) } else { Err(SettingsError { problems: self.problems }) }
    }
}

/// The variables a README documents under `heading` (`"## Configuration"`): the first cell of
/// each table row that starts with a code span (`` | `NAME` | ... ``), up to the next heading of
/// that level or higher. `None` if there is no such heading. A service's test compares them with
/// the names its settings read ([`Env::names_read`]), so the table cannot drift from the code.
pub fn documented_variables(readme: &str, heading: &str) -> Option<BTreeSet<String>> {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let mut lines = readme.lines().skip_while(|line| line.trim_end() != heading);
    lines.next()?;
    let mut in_code = false;
    let mut names = BTreeSet::new();
    for line in lines {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !in_code && (1..=level).contains(&hashes) && line[hashes..].starts_with(' ') {
            break;
        }
        if let Some(name) = line.strip_prefix("| `").and_then(|rest| rest.split('`').next()) {
            names.insert(name.to_string());
        }
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_variable() {
        let mut env = Env::from_map([("PORT", "eighty"), ("FLAG", "maybe"), ("MODE", "fast")]);
        let port: u16 = env.parse("PORT", 3000, "a port number");
        let _ = env.flag("FLAG", false);
        let _ = env.choice("MODE", &["obo", "passthrough"], "obo");
        let _: Option<String> = env.required("AUTHORITY", "a URL");
        assert_eq!(port, 3000);
        let err = env.finish().unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
        for name in ["PORT", "FLAG", "MODE", "AUTHORITY"] {
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn valid_values_and_defaults() {
        let mut env = Env::from_map([("PORT", "3002"), ("EMPTY", "  ")]);
        assert_eq!(env.parse::<u16>("PORT", 1, "a port"), 3002);
        assert_eq!(env.string("EMPTY", "default"), "default");
        assert_eq!(env.seconds("MISSING", 7), Duration::from_secs(7));
        let read = env.names_read();
        env.finish().unwrap();
        assert!(read.names().contains("MISSING") && read.names().contains("PORT"));
    }

    #[test]
    fn documented_variables_are_the_first_cells_of_one_section() {
        let readme = "# Service\n\n## Configuration\n\n| variable | meaning |\n|---|---|\n| `PORT` | where |\n\
                      | `LOG_FORMAT` | how |\n\n```sh\n# a comment, not a heading\n```\n| `AFTER_CODE` | still here |\n\
                      ### Details\n| `NESTED` | a subsection belongs to it |\n## API\n| `NOT_A_VARIABLE` | x |\n";
        let names = documented_variables(readme, "## Configuration").unwrap();
        assert_eq!(names, ["AFTER_CODE", "LOG_FORMAT", "NESTED", "PORT"].map(String::from).into());
        assert_eq!(documented_variables(readme, "## Settings"), None);
    }
}
