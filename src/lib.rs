//! tenantgate proves that a multi-tenant API keeps every tenant's data away from every
//! other tenant, and blocks the deploy when it does not.
//!
//! The pipeline: a suite is **parsed** ([`suite`]) into a validated model with source
//! locations; the runner ([`run`]) provisions org A and org B, seeds A, and runs every
//! check and built-in attack as B, each negative check with a positive control as A;
//! the database layer ([`db`]) audits the catalogs and probes RLS live as the app role;
//! every result is an [`outcome::Event`] consumed by the reporters ([`report`]): the
//! terminal table, JUnit XML and the JSON report. [`exit`] turns the counts into the
//! process status: 0 proven, 1 isolation broken, 2 undecided.

pub mod cli;
pub mod db;
pub mod diag;
pub mod exit;
pub mod manual;
pub mod outcome;
pub mod redact;
pub mod report;
pub mod run;
pub mod suite;
