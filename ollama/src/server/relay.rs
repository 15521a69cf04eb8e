//! A streamed answer relayed from the upstream to the agent inside the agent's own
//! connection task, which also drives the upstream connection (no task or channel in
//! between): every upstream chunk already received is translated and they leave as one
//! write, and the request is billed when the stream ends or when the agent hangs up (the
//! body is dropped).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;
use tokio_stream::Stream;

use super::{Bill, Caller, Gateway};
use crate::client::Answer;
use crate::dialect::{self, Request, StreamTranslator};
use crate::ledger::Outcome;
use crate::queue::Permit;
use crate::route::Upstream;

/// Most bytes gathered into one downstream write, so a fast upstream cannot keep the agent
/// waiting for its first byte.
const MAX_GATHER_BYTES: usize = 64 << 10;

/// The downstream body of a streamed answer.
pub(super) struct Relay {
    /// The upstream's answer (it enforces `[models] timeout` on the whole stream).
    upstream: Answer,
    tr: StreamTranslator,
    /// Set once the upstream ended (normally or not); nothing more is read.
    done: bool,
    /// Billing, taken when the record is written (once).
    billing: Option<Billing>,
    /// Frames translated and not yet handed to the agent's connection, and their size.
    held: Vec<Bytes>,
    held_bytes: usize,
}

/// What the ledger record needs, and the slots held until the stream is over.
pub(super) struct Billing {
    pub gw: Arc<Gateway>,
    pub caller: Arc<Caller>,
    pub req: Request,
    pub bill: Bill,
    pub up: Arc<Upstream>,
    /// Held, not read: the agent's and the upstream's slots are free once billed.
    pub _slots: (OwnedSemaphorePermit, Permit),
}

impl Relay {
    pub(super) fn new(upstream: Answer, tr: StreamTranslator, billing: Billing) -> Self {
        Self {
            upstream,
            tr,
            done: false,
            billing: Some(billing),
            held: Vec::new(),
            held_bytes: 0,
        }
    }

    /// What the upstream has already sent, so that it leaves in the same write as the
    /// response head. None when nothing has come (a model still reading its prompt): the
    /// head then goes out alone at once and the body follows as it comes. Without this the
    /// head would always go alone, one write more per stream.
    pub(super) async fn ready_now(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        std::future::poll_fn(|cx| match Pin::new(&mut *self).poll_next(cx) {
            Poll::Ready(item) => Poll::Ready(item),
            Poll::Pending => Poll::Ready(None),
        })
        .await
    }

    /// The held frames as one buffer (None when there are none).
    fn take_held(&mut self) -> Option<Bytes> {
        self.held_bytes = 0;
        match self.held.len() {
            0 => None,
            1 => self.held.pop(),
            _ => Some(Bytes::from(std::mem::take(&mut self.held).concat())),
        }
    }

    /// Write the ledger record and free the slots.
    fn settle(&mut self, mut outcome: Outcome) {
        let Some(b) = self.billing.take() else {
            return;
        };
        if outcome == Outcome::Ok && self.tr.upstream_error().is_some() {
            outcome = Outcome::UpstreamError;
        }
        let usage = self.tr.usage();
        let mut r = b.bill.record(&b.caller, Some(&b.up.name), 200, outcome);
        match (usage.prompt_tokens, usage.completion_tokens) {
            (Some(p), Some(c)) => {
                r.prompt_tokens = p;
                r.completion_tokens = c;
            }
            (p, c) => {
                // Cut before the usage arrived: bill what was produced, one token per
                // generated chunk, and the prompt at about four characters a token.
                r.prompt_tokens = p.unwrap_or((b.req.prompt_chars as u64).div_ceil(4));
                r.completion_tokens = c.unwrap_or(usage.produced_chunks);
                r.estimated = true;
            }
        }
        b.gw.bill(r);
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let me = &mut *self;
        loop {
            if me.done {
                return Poll::Ready(me.take_held().map(Ok));
            }
            match me.upstream.poll_data(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    let frames = me.tr.feed(&bytes);
                    me.held_bytes += frames.iter().map(Bytes::len).sum::<usize>();
                    me.held.extend(frames);
                    if me.held_bytes >= MAX_GATHER_BYTES {
                        return Poll::Ready(me.take_held().map(Ok));
                    }
                }
                Poll::Ready(None) => {
                    let frames = me.tr.finish();
                    me.held.extend(frames);
                    me.done = true;
                    // Billed before the last bytes go out, so a client that has the whole
                    // answer finds it in the ledger.
                    me.settle(Outcome::Ok);
                }
                Poll::Ready(Some(Err(e))) => {
                    if let Some(b) = &me.billing {
                        let msg = format!("{} failed mid-stream: {e}", b.up.name);
                        me.held
                            .push(dialect::stream_error_frame(b.req.dialect, &msg));
                    }
                    me.done = true;
                    me.settle(Outcome::UpstreamError);
                }
                Poll::Pending => {
                    return match me.take_held() {
                        Some(b) => Poll::Ready(Some(Ok(b))),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl Drop for Relay {
    /// The agent hung up before the end (its connection dropped the body): dropping the
    /// upstream body stops the generation, and what was produced is billed.
    fn drop(&mut self) {
        self.settle(Outcome::ClientClosed);
    }
}
