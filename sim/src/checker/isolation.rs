//! User isolation: a connection only ever receives its own user's events.

use super::{Checker, Failure, Obs};

#[derive(Default)]
pub(crate) struct IsolationChecker;

impl Checker for IsolationChecker {
    fn name(&self) -> &'static str {
        "isolation"
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        if let Obs::Frame {
            conn,
            session_user,
            json,
            ..
        } = obs
            && let Some(owner) = json.user_id()
            && owner != session_user.as_str()
        {
            let kind = json.kind_opt().unwrap_or("?");
            return Err(Failure::new(
                self.name(),
                format!("{conn} of user {session_user} received {kind} of user {owner}"),
            ));
        }
        Ok(())
    }
}
