use super::*;

fn authorize(state: usize) -> Op {
    Op::Authorize {
        user: 1,
        client: 0,
        redirect: 0,
        verifier: 0,
        state: Text::Known(state),
        plain: false,
    }
}

fn callback(code: usize, state: Text) -> Op {
    Op::Callback {
        code: Pick::Issued(code),
        state,
        verifier: Text::Known(0),
        redirect: 0,
        client: 0,
    }
}

#[test]
fn oauth_flow_honest_flow_then_replay_and_reuse_pass() {
    let ops = vec![
        authorize(0),
        callback(0, Text::Known(0)),
        Op::Refresh(Pick::Issued(0)),
        Op::Refresh(Pick::Issued(0)),
        callback(0, Text::Known(0)),
        Op::Login(0),
        Op::Refresh(Pick::Issued(2)),
        Op::Advance(61),
        authorize(1),
        Op::Advance(61),
        callback(1, Text::Known(1)),
    ];
    assert_eq!(run_ops(&ops, Plants::NONE), Ok(()));
}

#[test]
fn oauth_flow_wrong_bindings_issue_nothing() {
    let ops = vec![
        authorize(0),
        Op::Callback {
            code: Pick::Issued(0),
            state: Text::Known(0),
            verifier: Text::Known(1),
            redirect: 0,
            client: 0,
        },
        authorize(1),
        Op::Callback {
            code: Pick::Issued(1),
            state: Text::Known(1),
            verifier: Text::Known(0),
            redirect: 0,
            client: 1,
        },
        callback(1, Text::Known(1)),
    ];
    assert_eq!(run_ops(&ops, Plants::NONE), Ok(()));
}

#[test]
fn model_requires_the_s256_of_the_verifier() {
    // Computed independently: python3 hashlib.sha256 + base64.urlsafe_b64encode, unpadded.
    assert_eq!(
        s256("dBjftJeZ4CVP-mJ0kQb6W4gN3kv-1b-JmMZOJjNW6jc"),
        "PqMeFXZxqtxuMhS-MFDBn5vpTN6OB78gcNc_oEzF0gE"
    );
}

#[cfg(feature = "planted-bugs")]
#[test]
fn oauth_flow_state_unchecked_plant_is_caught() {
    let ops = vec![
        authorize(0),
        callback(0, Text::Raw("attacker-state".into())),
    ];
    assert_eq!(
        run_ops(&ops, Plants::only(crate::Plant::OauthStateUnchecked)),
        Err(OracleViolation::AuthFlow {
            step: 1,
            why: "callback issued tokens for a state not bound to the code".into()
        })
    );
    assert_eq!(run_ops(&ops, Plants::NONE), Ok(()));
}

#[cfg(feature = "planted-bugs")]
#[test]
fn oauth_flow_refresh_reusable_plant_is_caught() {
    let ops = vec![
        Op::Login(0),
        Op::Refresh(Pick::Issued(0)),
        Op::Refresh(Pick::Issued(0)),
    ];
    let r = run_ops(&ops, Plants::only(crate::Plant::RefreshReusable));
    assert!(
        matches!(&r, Err(OracleViolation::AuthFlow { step: 2, why }) if why.starts_with("rotated a used refresh token")),
        "{r:?}"
    );
    assert_eq!(run_ops(&ops, Plants::NONE), Ok(()));
}
