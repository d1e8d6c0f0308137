use super::*;

fn bearer(token: Pick) -> Step {
    Step::Request {
        path_ok: true,
        headers: vec![Header::Authorization {
            name: "Authorization",
            scheme: "Bearer",
            token,
        }],
        query: None,
        peer: 0,
    }
}

fn case(steps: Vec<Step>) -> Case {
    Case {
        origin_list: false,
        query_tokens: false,
        steps,
    }
}

#[cfg(feature = "planted-bugs")]
fn index_of(jti: &str) -> Pick {
    pool().unwrap().iter().position(|t| t.jti == jti).unwrap()
}

#[test]
fn handshake_every_pool_token_as_bearer_passes() {
    let steps = (0..pool().unwrap().len()).map(bearer).collect();
    assert_eq!(run_case(&case(steps), Plants::NONE), Ok(()));
}

#[test]
fn handshake_tickets_and_subprotocols_pass() {
    let steps = vec![
        Step::IssueTicket(0),
        Step::Request {
            path_ok: true,
            headers: vec![Header::Subprotocols(vec![
                Proto::Text("chat".into()),
                Proto::Jwt,
                Proto::Token(1),
            ])],
            query: Some(Query::Ticket(0)),
            peer: 1,
        },
        Step::Request {
            path_ok: true,
            headers: vec![],
            query: Some(Query::Ticket(0)),
            peer: 2,
        },
        Step::Request {
            path_ok: true,
            headers: vec![],
            query: Some(Query::Ticket(0)),
            peer: 3,
        },
    ];
    assert_eq!(run_case(&case(steps), Plants::NONE), Ok(()));
}

#[test]
fn model_authorization_header_preempts_subprotocol() {
    let pool = pool().unwrap();
    let model = Model {
        pool,
        revoked: Vec::new(),
        tickets: Vec::new(),
        last_feed: fixtures::now(),
        origin_list: false,
        query_tokens: false,
    };
    let alice = pool.first().map(|t| t.token.clone()).unwrap();
    let req = HandshakeRequest::new(ip(0))
        .header(
            "Sec-WebSocket-Protocol",
            &format!("jwt.{}", URL_SAFE_NO_PAD.encode(&alice)),
        )
        .header("authorization", "Basic abc");
    assert!(matches!(
        model.presented(&req),
        Presented::Invalid("a malformed authorization header")
    ));
    let req = HandshakeRequest::new(ip(0)).header(
        "Sec-WebSocket-Protocol",
        &format!("jwt, jwt.{}", URL_SAFE_NO_PAD.encode(&alice)),
    );
    assert!(matches!(model.presented(&req), Presented::Token(t) if t == alice));
    let alone = HandshakeRequest::new(ip(0)).header(
        "Sec-WebSocket-Protocol",
        &format!("jwt.{}", URL_SAFE_NO_PAD.encode(&alice)),
    );
    assert!(matches!(
        model.presented(&alone),
        Presented::Invalid("a jwt.<token> subprotocol offered without jwt")
    ));
}

#[cfg(feature = "planted-bugs")]
#[test]
fn handshake_alg_from_header_plant_is_caught() {
    let steps = vec![bearer(index_of("j-oscar"))];
    let r = run_case(
        &case(steps.clone()),
        Plants::only(crate::Plant::AlgFromHeader),
    );
    assert_eq!(
        r,
        Err(OracleViolation::AcceptedWithoutCredential {
            step: 0,
            user: "oscar".into(),
            why: "a token that is never valid".into(),
        })
    );
    assert_eq!(run_case(&case(steps), Plants::NONE), Ok(()));
}

#[cfg(feature = "planted-bugs")]
#[test]
fn handshake_revocation_fail_open_plant_is_caught() {
    let steps = vec![
        Step::Advance {
            secs: 10,
            feed: false,
        },
        bearer(index_of("j-alice")),
    ];
    let r = run_case(
        &case(steps.clone()),
        Plants::only(crate::Plant::RevocationFailOpen),
    );
    assert_eq!(
        r,
        Err(OracleViolation::AcceptedWithoutCredential {
            step: 1,
            user: "alice".into(),
            why: "a stale revocation view (fail closed)".into(),
        })
    );
    assert_eq!(run_case(&case(steps), Plants::NONE), Ok(()));
}

#[test]
fn model_refuses_requests_over_the_size_bounds() {
    let pool = pool().unwrap();
    let mut model = Model {
        pool,
        revoked: Vec::new(),
        tickets: Vec::new(),
        last_feed: fixtures::now(),
        origin_list: false,
        query_tokens: false,
    };
    let alice = pool.first().map(|t| t.token.clone()).unwrap();
    let ok = HandshakeRequest::new(ip(0)).header("Authorization", &format!("Bearer {alice}"));
    assert_eq!(model.judge(&ok, fixtures::now()), Ok("alice"));
    let huge = ok.header("X-Padding", &"p".repeat(MAX_HANDSHAKE_BYTES));
    assert_eq!(
        model.judge(&huge, fixtures::now()),
        Err("a request over the handshake size bounds".to_string())
    );
    let steps = vec![Step::Request {
        path_ok: true,
        headers: vec![
            Header::Authorization {
                name: "Authorization",
                scheme: "Bearer",
                token: 0,
            },
            Header::Huge(17_000),
        ],
        query: None,
        peer: 0,
    }];
    assert_eq!(run_case(&case(steps), Plants::NONE), Ok(()));
}

#[cfg(feature = "planted-bugs")]
#[test]
fn handshake_cache_ignores_exp_plant_is_caught_once_a_valid_token_expires() {
    // Accepted at t0, presented again at t0 + 120 s: past its 60 s life and the leeway.
    let wait = Step::Advance {
        secs: 40,
        feed: true,
    };
    let mut steps = vec![bearer(index_of("j-bob"))];
    steps.extend(std::iter::repeat_n(wait, 3));
    steps.push(bearer(index_of("j-bob")));
    let r = run_case(
        &case(steps.clone()),
        Plants::only(crate::Plant::CacheIgnoresExp),
    );
    assert!(
        matches!(&r, Err(OracleViolation::AcceptedWithoutCredential { step: 4, user, why })
            if user == "bob" && why == "an expired token"),
        "{r:?}"
    );
    assert_eq!(run_case(&case(steps), Plants::NONE), Ok(()));
}
