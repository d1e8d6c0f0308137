"""A standard client (python `websockets`) against `gauntlet serve`.

Run by `.ci/python-interop`: argv is the gateway URL, a valid access token and a forged one.
Checks: the `jwt` + `jwt.<token>` offer completes the handshake with `jwt` selected (the
library itself fails a handshake whose selected subprotocol was not offered),
`connection_established` comes first, a run's five events arrive in order with increasing
`seq`; a `jwt.<token>` offered alone is refused with 400 and a body that names the fix and not
the token; a forged token is refused with 401. Every wait is bounded.
"""

import base64
import json
import sys

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

WAIT = 10.0
TERMINAL = {"agent_completed", "agent_failed", "agent_cancelled"}


def b64url(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def refused(url, protocols):
    try:
        with connect(url, subprotocols=protocols, open_timeout=WAIT):
            return None
    except InvalidStatus as e:
        return e.response


def main():
    url, token, forged = sys.argv[1:4]
    offer = ["jwt", "jwt." + b64url(token)]
    with connect(url, subprotocols=offer, open_timeout=WAIT) as ws:
        assert ws.subprotocol == "jwt", f"selected {ws.subprotocol!r}"
        first = json.loads(ws.recv(timeout=WAIT))
        assert first["type"] == "connection_established", first
        ws.send(json.dumps({"type": "user_message", "payload": {"content": "hello from python"}}))
        kinds, seqs = [], []
        while not (kinds and kinds[-1] in TERMINAL):
            frame = json.loads(ws.recv(timeout=WAIT))
            if "seq" in frame:
                kinds.append(frame["type"])
                seqs.append(frame["seq"])
        assert kinds[0] == "agent_started" and kinds[-1] in TERMINAL, kinds
        assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs
        print(f"python websockets: jwt selected; events {kinds} seqs {seqs}")

    alone = refused(url, ["jwt." + b64url(token)])
    assert alone is not None, "a jwt.<token> offered alone was accepted"
    body = alone.body.decode()
    assert alone.status_code == 400, (alone.status_code, body)
    assert json.loads(body)["error"] == "jwt_subprotocol_required", body
    assert token not in body and b64url(token) not in body, "the refusal echoes the token"
    print(f"python websockets: token-only offer refused 400 {body}")

    bad = refused(url, ["jwt", "jwt." + b64url(forged)])
    assert bad is not None, "a forged token was accepted"
    assert bad.status_code == 401, bad.status_code
    print(f"python websockets: forged token refused {bad.status_code} {bad.body.decode()}")


if __name__ == "__main__":
    main()
