//! The delegated scopes and the app role orders-api defines, by their manifest names (a test
//! in `authorization` checks each exists there). Settings advertise them; policies require them.

pub const READ: &str = "Orders.Read";
pub const READ_WRITE: &str = "Orders.ReadWrite";
/// The app role that sees and changes every user's orders, and may delete them.
pub const ADMIN: &str = "Orders.Admin";
/// The delegated scopes orders-api defines.
pub const SCOPES: [&str; 2] = [READ, READ_WRITE];
