//! The member of both orgs (run stage): the `shared_member` variant of a read or list
//! that names the caller's own scope (`{{own.NAME}}`). A user who belongs to A and B
//! sends the request in B's scope: a list must hold none of A's markers, a read of A's
//! id must be indistinguishable from a never-issued id. The positive control is the
//! same user in A's scope, which must see A's data — else nothing can be concluded.

use super::checks::{Ctx, Sender, not_found_variant};
use super::context::{Sending, Twins};
use super::http::Prepared;
use super::verdict::{self, Decision, show};
use crate::plan::CheckPlan;
use crate::suite::model::{Identity, Request};

/// The error when the member's control in A's scope does not see A's data.
pub const NOT_A_MEMBER: &str = "the member does not see A's rows in A's scope: is it a member of A? (`orgs.member` must make it a member of both orgs), so this variant could not fail";

/// `req` sent by the member in `own`'s scope (`{{own.NAME}}` as `own`'s), with A's
/// values swapped for never-issued twins when `twins` is given.
fn member_in(
    ctx: &Ctx,
    req: &Request,
    own: Identity,
    twins: Option<&Twins>,
) -> Result<Prepared, Decision> {
    let how = Sending {
        as_: Identity::Member,
        own: Some(own),
        credential: None,
    };
    ctx.preparer()
        .prepare_sending(req, &how, None, twins, None)
        .map_err(|e| Decision::error(format!("cannot build the member's request: {e}")))
}

/// The member reads A's object in B's scope; the control is its read in A's scope.
pub(super) async fn read(
    ctx: &Ctx,
    s: &Sender<'_>,
    plan: &CheckPlan,
    req: &Request,
) -> Result<Decision, Decision> {
    let control = member_in(ctx, req, Identity::A, None)?;
    let r = s.send(&control, "the member in A's scope").await?;
    if !r.is_success() {
        return Err(Decision::error(NOT_A_MEMBER)
            .with("the member got, in A's scope", show(&r))
            .with("control", control.line()));
    }
    let twins = Twins::default();
    let b = member_in(ctx, req, Identity::B, None)?;
    let t = member_in(ctx, req, Identity::B, Some(&twins))?;
    if b == t {
        return Err(Decision::error(
            "the request names no value captured for A (`{{a.NAME}}`), so there is no never-issued id to compare with",
        ));
    }
    let (d, _, _) = not_found_variant(s, plan, &b, &t, &twins.ids(), &ctx.markers).await?;
    Ok(verdict::as_member(d).with("control", control.line()))
}

/// The member's list in B's scope must hold none of A's markers; the control is its
/// list in A's scope, which must hold them.
pub(super) async fn list(
    ctx: &Ctx,
    s: &Sender<'_>,
    req: &Request,
    control_is_json: bool,
) -> Result<Decision, Decision> {
    let control = member_in(ctx, req, Identity::A, None)?;
    let r = s.send(&control, "the member in A's scope").await?;
    if !r.is_success() || !verdict::any_marker_in(&r.body, &ctx.markers) {
        return Err(Decision::error(NOT_A_MEMBER)
            .with("the member got, in A's scope", show(&r))
            .with("control", control.line()));
    }
    let b = member_in(ctx, req, Identity::B, None)?;
    let rb = s.send(&b, "the member in B's scope").await?;
    let d = verdict::list_rule(&rb, &ctx.markers, control_is_json);
    Ok(verdict::as_member(d)
        .with("request", b.line())
        .with("control", control.line()))
}
