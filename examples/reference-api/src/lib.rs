//! tenantgate's reference target: a small multi-tenant API on PostgreSQL Row-Level
//! Security, with switchable planted isolation bugs, plus a throwaway PostgreSQL
//! cluster for demos and tests.

pub mod pg;
