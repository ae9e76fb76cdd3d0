//! Who a request acts for, and which orders that lets them reach.

/// The signed-in user a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub oid: String,
    /// The `name` claim (else the username, else the oid): recorded on orders they place.
    pub name: String,
    pub admin: bool,
}

/// Which orders a user may see and change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility<'a> {
    Owner(&'a str),
    All,
}

impl User {
    pub fn visibility(&self) -> Visibility<'_> {
        if self.admin { Visibility::All } else { Visibility::Owner(&self.oid) }
    }
}
