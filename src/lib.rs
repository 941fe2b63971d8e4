//! tenantgate proves that a multi-tenant API keeps every tenant's data away from every
//! other tenant, and blocks the deploy when it does not.
//!
//! The pipeline, in order, and the module that holds each stage:
//!
//! 1. **parse** — [`cli`] reads the command line; [`suite`] loads a suite file into a
//!    validated model with source locations ([`diag`] renders its mistakes);
//! 2. **plan** — [`plan`] turns the suite into ordered check plans with stable result
//!    ids, after `--filter` (`validate --list` prints the same plan);
//! 3. **run** — [`run::run_suite`]: setup (provision org A and org B, seed A), the
//!    checks and built-in attacks as B, each negative check with a positive control as
//!    A (rules in [`run::verdict`]), the database audit ([`db`]: catalogs and a live RLS
//!    probe as the app role), teardown;
//! 4. **report** — every result is an [`outcome::Event`] consumed by the reporters
//!    ([`report`]: the terminal table, JUnit XML, the JSON report), with every secret
//!    removed first ([`redact`]); [`exit`] turns the counts into the process status:
//!    0 proven, 1 isolation broken, 2 undecided.

pub mod baseline;
pub mod cli;
pub mod db;
pub mod diag;
pub mod digest;
pub mod exit;
pub mod manual;
pub mod merge;
pub mod openapi;
pub mod outcome;
pub mod plan;
pub mod promise;
pub mod random;
pub mod redact;
pub mod report;
pub mod run;
pub mod suite;
