//! Database audit (placeholder until the audit lands): the interface the runner and the
//! CLI call.

use crate::outcome::{CheckResult, Layer, Verdict};
use crate::redact::Redactor;

pub struct AuditConfig {
    pub url: String,
    pub tenant_columns: Vec<String>,
    pub schemas: Vec<String>,
    pub tables: Vec<String>,
    pub exempt: Vec<String>,
    pub app_role: Option<String>,
    pub tenant_setting: Option<String>,
    pub probe: Option<ProbeConfig>,
}

pub struct ProbeConfig {
    pub url: String,
    pub orgs: Option<ProbeOrgs>,
}

pub struct ProbeOrgs {
    pub a: String,
    pub b: String,
}

pub async fn audit(_cfg: &AuditConfig, _redactor: &Redactor) -> Vec<CheckResult> {
    vec![CheckResult::new(
        "database.audit",
        "database",
        "audit",
        Layer::Database,
        Verdict::Error,
        "not implemented",
    )]
}
