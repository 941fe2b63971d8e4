//! The reference API's integration tests: one binary, one shared throwaway PostgreSQL
//! cluster, a fresh database and role prefix per test, real HTTP on a real socket.

mod binary;
mod bugs;
mod clean;
mod common;
mod database;
mod features;
mod openapi;
mod pg_smoke;
mod scoped;
mod scoped_bugs;
mod scoped_matrix;
mod tls;
