//! What every connection task shares, fixed at startup: the WebSocket config derived from
//! the gateway's limits and the writer channel's capacity. No key ring: the admin endpoint's
//! service tokens are checked by the gateway task against the ring in force now.

use gauntlet_core::Config;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::{FRAME_SLACK_BYTES, PRE_UPGRADE_SLACK, READ_BUFFER_SIZE};

/// What every connection task shares: fixed at startup.
pub(crate) struct Shared {
    pub(crate) ws_config: WebSocketConfig,
    /// The writer channel's capacity: the gateway's send queue bound plus the close frame,
    /// so a writer never refuses a frame the gateway's flow control allowed.
    pub(crate) writer_capacity: usize,
    /// Most sockets served at once: the gateway's connection limit plus room for requests
    /// that have not upgraded (yet).
    pub(crate) max_sockets: usize,
}

impl Shared {
    pub(crate) fn new(config: &Config) -> Self {
        let max = config
            .limits
            .max_frame_bytes
            .saturating_add(FRAME_SLACK_BYTES);
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_SIZE)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        Self {
            ws_config,
            writer_capacity: config.limits.send_queue_capacity.saturating_add(2),
            max_sockets: config
                .limits
                .max_connections
                .saturating_add(PRE_UPGRADE_SLACK)
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        }
    }
}
