//! The suite (parse stage): the v1 model ([`model`]), template strings ([`template`]),
//! and loading with validation ([`load`]) that reports every problem with its file,
//! line and column before anything is sent.

pub mod load;
pub mod model;
pub mod promises;
pub mod template;

pub use load::{LoadError, Loaded, load_file, load_str};
pub use model::Suite;
