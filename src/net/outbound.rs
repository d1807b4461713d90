//! What a server sends down one stream, bounded in bytes: an agent stream
//! (`Negotiate`), a launcher's work stream (`Cluster.Work`).
//!
//! Messages wait here until the client reads them. An agent that stops
//! reading must not make the server buffer without end (2,800 refused Acts
//! with 1 MB ids once reached 3 GB), so the queue counts the bytes it holds:
//! a send that would pass the stream's budget cuts the stream off instead.
//! The agent then reads one `RESOURCE_EXHAUSTED` status where its next
//! message would have been, and every party it played fails with a
//! recorded violation.
//!
//! The budget is small until the stream has joined a party (a stream that
//! plays nothing only ever receives errors) and larger after.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::{Notify, mpsc};
use tokio_stream::Stream;
use tonic::Status;

use super::pb;

/// Budget of a stream that has joined a party: far above what a stream
/// playing hundreds of seats keeps queued (a few messages per seat). A
/// server with a larger message size gives room for two of its messages
/// ([`Outbound::seated`]).
pub const SEATED_BYTES: usize = 1 << 20;
/// Budget of a stream that plays no party yet.
pub const UNSEATED_BYTES: usize = 64 << 10;

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// The agent's stream is closed.
    Closed,
    /// The agent reads too slowly; the stream is cut off.
    CutOff,
}

struct Shared {
    queued: AtomicUsize,
    budget: AtomicUsize,
    /// Over the budget: the stream ends with "did not read".
    cut: AtomicBool,
    /// Ended by the server ([`Outbound::end`]).
    ended: AtomicBool,
    /// Wakes whoever awaits [`Outbound::closed`].
    notify: Notify,
}

/// The sending side; cloned by every party the stream plays.
pub struct Outbound<M = pb::ServerMessage> {
    tx: mpsc::UnboundedSender<Queued<M>>,
    shared: Arc<Shared>,
}

impl<M> Clone for Outbound<M> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone(), shared: self.shared.clone() }
    }
}

/// What waits in the queue.
enum Queued<M> {
    Message(M, usize),
    /// Marks a cut, so that a parked reader wakes to it.
    Cut,
    /// The server ends the stream with this status.
    End(Status),
}

/// The stream tonic sends to the client.
pub struct OutboundStream<M = pb::ServerMessage> {
    rx: mpsc::UnboundedReceiver<Queued<M>>,
    shared: Arc<Shared>,
    done: bool,
}

/// A new agent-stream queue, with the budget of an unseated stream.
pub fn channel() -> (Outbound, OutboundStream) {
    bounded(UNSEATED_BYTES)
}

/// A new queue that holds at most `budget` bytes.
pub fn bounded<M>(budget: usize) -> (Outbound<M>, OutboundStream<M>) {
    // Unbounded in messages, bounded in bytes by `Shared::queued`: the count
    // is what limits it, not the channel.
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        budget: AtomicUsize::new(budget),
        cut: AtomicBool::new(false),
        ended: AtomicBool::new(false),
        notify: Notify::new(),
    });
    (Outbound { tx, shared: shared.clone() }, OutboundStream { rx, shared, done: false })
}

impl From<pb::server_message::Kind> for pb::ServerMessage {
    fn from(kind: pb::server_message::Kind) -> Self {
        pb::ServerMessage { kind: Some(kind) }
    }
}

impl<M: prost::Message> Outbound<M> {
    /// Queues `msg`, or says why not. Passing the budget cuts the stream
    /// off (once; later sends answer `CutOff`).
    pub fn send(&self, msg: impl Into<M>) -> Result<(), Gone> {
        if self.shared.cut.load(Ordering::Acquire) {
            return Err(Gone::CutOff);
        }
        if self.shared.ended.load(Ordering::Acquire) {
            return Err(Gone::Closed);
        }
        let msg: M = msg.into();
        let bytes = msg.encoded_len() + 16;
        let before = self.shared.queued.fetch_add(bytes, Ordering::AcqRel);
        if before + bytes > self.shared.budget.load(Ordering::Acquire) {
            self.shared.queued.fetch_sub(bytes, Ordering::AcqRel);
            self.cut_now();
            return Err(Gone::CutOff);
        }
        self.tx.send(Queued::Message(msg, bytes)).map_err(|_| {
            self.shared.queued.fetch_sub(bytes, Ordering::AcqRel);
            Gone::Closed
        })
    }

    fn cut_now(&self) {
        if !self.shared.cut.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(Queued::Cut);
            self.shared.notify.notify_waiters();
        }
    }

    /// Ends the stream with `status` once the client has read what is
    /// queued; later sends are refused.
    pub fn end(&self, status: Status) {
        if !self.shared.ended.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(Queued::End(status));
            self.shared.notify.notify_waiters();
        }
    }

    /// The stream now plays a party: the larger budget, room for at least
    /// two messages of `max_message` bytes.
    pub fn seated(&self, max_message: usize) {
        self.shared.budget.store(SEATED_BYTES.max(2 * max_message + (64 << 10)), Ordering::Release);
    }

    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::Acquire)
    }

    /// Bytes waiting for the agent to read them.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Resolves once the stream has been cut off or ended by the server.
    pub async fn closed(&self) {
        loop {
            let notified = self.shared.notify.notified();
            if self.is_cut() || self.shared.ended.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

impl<M> Unpin for OutboundStream<M> {}

impl<M> Stream for OutboundStream<M> {
    type Item = Result<M, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.shared.cut.load(Ordering::Acquire) {
            self.done = true;
            let queued = self.shared.queued.load(Ordering::Acquire);
            return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                "this stream was cut off: the client did not read its messages ({queued} bytes were waiting, \
                 the limit is {})",
                self.shared.budget.load(Ordering::Acquire)
            )))));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Queued::Message(msg, bytes))) => {
                self.shared.queued.fetch_sub(bytes, Ordering::AcqRel);
                Poll::Ready(Some(Ok(msg)))
            }
            // The cut marker: the next poll reports it.
            Poll::Ready(Some(Queued::Cut)) => self.as_mut().poll_next(cx),
            Poll::Ready(Some(Queued::End(status))) => {
                self.done = true;
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    fn error(message: String) -> pb::server_message::Kind {
        pb::server_message::Kind::Error(pb::Error { message, ..Default::default() })
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_is_cut_off_with_a_status() {
        let (out, mut stream) = channel();
        let mut sent = 0;
        while out.send(error("x".repeat(1000))).is_ok() {
            sent += 1;
        }
        assert!(sent > 10 && sent < 70, "{sent}");
        assert!(out.queued() <= UNSEATED_BYTES);
        assert_eq!(out.send(error(String::new())), Err(Gone::CutOff));
        let first = stream.next().await.unwrap();
        let status = first.unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("did not read"), "{}", status.message());
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_reader_that_keeps_up_gets_everything() {
        let (out, mut stream) = channel();
        out.seated(1 << 20);
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while let Some(Ok(_)) = stream.next().await {
                n += 1;
            }
            n
        });
        for _ in 0..20_000 {
            out.send(error("y".repeat(100))).unwrap();
            if out.queued() > SEATED_BYTES {
                tokio::task::yield_now().await;
            }
        }
        drop(out);
        assert_eq!(reader.await.unwrap(), 20_000);
    }
}
