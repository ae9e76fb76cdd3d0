//! The changes a run makes (or, with `--dry-run`, would make), and how they are printed.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
    Set,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Set => "set",
        })
    }
}

/// One write: to Microsoft Graph, the azd environment or a container app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: Action,
    /// `application`, `service principal`, `federated credential`, `admin consent`,
    /// `app role assignment`, `azd env`, `container app`.
    pub object: &'static str,
    /// Which one: a manifest app name, a variable name, a container app name.
    pub name: String,
    pub detail: String,
}

impl Change {
    pub fn new(action: Action, object: &'static str, name: &str, detail: impl Into<String>) -> Change {
        Change { action, object, name: name.to_string(), detail: detail.into() }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.action, self.object, self.name)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// The changes as a table, one row each.
pub fn table(changes: &[Change]) -> String {
    const HEADERS: [&str; 4] = ["ACTION", "OBJECT", "NAME", "DETAIL"];
    let rows: Vec<[String; 4]> = changes
        .iter()
        .map(|c| [c.action.to_string(), c.object.to_string(), c.name.clone(), c.detail.clone()])
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 3 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(HEADERS);
    out.push_str(&line(widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str)));
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let changes = [
            Change { action: Action::Create, object: "application", name: "orders-api".into(), detail: "new".into() },
            Change { action: Action::Set, object: "azd env", name: "ORDERS_API_CLIENT_ID".into(), detail: "x".into() },
        ];
        let text = table(&changes);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        let detail_column = lines[0].find("DETAIL").unwrap();
        assert_eq!(lines[2].find("new"), Some(detail_column));
        assert_eq!(lines[3].len() - 1, detail_column);
    }
}
