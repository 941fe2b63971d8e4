//! The suite (parse stage): the v1 model ([`model`]), template strings ([`template`]),
//! and loading ([`load`]: reading and orchestration; `yaml_error`: YAML errors in the
//! suite's words; `recover`: reading past a wrong key or value; [`validate`]: the rules
//! the types cannot express), which reports every
//! problem with its file, line and column before anything is sent.

pub mod load;
pub mod model;
pub mod promises;
mod recover;
pub mod schema;
pub mod template;
pub mod validate;
mod yaml_error;

pub use load::{LoadError, Loaded, load_file, load_str};
pub use model::Suite;
