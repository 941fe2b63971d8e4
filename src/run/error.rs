//! Why a stage of the run could not do something (run stage): the one error type of
//! the runner's own steps — building the client, signing and forging tokens, building
//! a request, reading a capture. Transport failures are [`super::http::TransportError`];
//! a step's failure with its evidence is [`super::setup::StepError`].

/// An error of the runner's own steps (not of the target).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    // The signing key (`orgs.mint`, `attacks.token_forgery.sign_with`).
    #[error("`{0}` is not a supported algorithm")]
    UnknownAlgorithm(String),
    #[error("an HMAC algorithm needs a secret")]
    NoSecret,
    #[error("an RSA or EC algorithm needs a key file")]
    NoKeyFile,
    #[error("cannot read key file `{path}`: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("key file `{path}` is not a usable PEM private key: {reason}")]
    BadPem { path: String, reason: String },
    #[error("{0}")]
    Sign(String),
    #[error("no usable signing key for `orgs.mint`")]
    NoMintKey,

    // The HTTP client and its TLS trust.
    #[error("`{path}` cannot be read: {reason}")]
    CaUnreadable { path: String, reason: String },
    #[error("`{path}` is not a PEM certificate bundle: {reason}")]
    CaNotPem { path: String, reason: String },
    #[error("`{0}` holds no PEM certificate")]
    CaEmpty(String),
    #[error("{0}")]
    Client(String),

    /// A placeholder could not be filled (the template's own message).
    #[error("{0}")]
    Template(String),

    // Captures.
    #[error("the answer has no `{0}` header")]
    NoHeader(String),
    #[error("the answer sets no `{0}` cookie")]
    NoCookie(String),
    #[error("`{0}` needs a JSON body, and the answer is not JSON")]
    NotJson(String),
    #[error("`{0}` is null")]
    Null(String),
    #[error("`{0}` matched nothing")]
    NoMatch(String),

    // Token forgeries.
    #[error("B has no token (nothing captured as `token`)")]
    NoToken,
    #[error("`orgs.auth` does not send `{{{{token}}}}`, so a forged token cannot be sent")]
    AuthSendsNoToken,
    #[error("B's token is not a JWT: there are no claims to forge")]
    NotJwt,
    #[error("B's token has none of the usual tenant claims; set `orgs.tenant_claim`")]
    NoTenantClaim,
    #[error("A's org id is unknown: capture `org_id` when provisioning")]
    NoAOrg,
    #[error(
        "no signing key: mint tokens, or give `attacks.token_forgery.sign_with`, to test expired tokens and tokens without `exp`"
    )]
    NoSigningKey,
}

impl From<String> for RunError {
    /// A template's rendering error (`Tpl::render` reports in words).
    fn from(s: String) -> Self {
        RunError::Template(s)
    }
}
