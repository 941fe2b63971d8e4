//! The one integration-test binary: a module per area, one link step.
//! Every test here drives real parts: a throwaway PostgreSQL, the reference API on a
//! real socket, the real `tenantgate` binary.

mod bad_input;
mod ci;
mod common;
mod db;
mod dbtls;
mod distribution;
mod faultproxy;
mod faults;
mod fuzz;
mod gate;
mod graphql;
mod pool;
mod probe_many;
mod promises;
mod reports;
mod runner_truth;
mod styles;
mod support;
mod trust;
