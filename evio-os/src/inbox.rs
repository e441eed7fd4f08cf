//! The inboxes of a server's loops: the [`PostOffice`] a handler's write, close or abort
//! of another loop's connection goes through.
//!
//! Each loop has one inbox of fixed size, reserved when the server starts: at most
//! `posts` posts holding at most `bytes` bytes between two of its loop's turns, and a
//! queue of refusals coming back from the other loops. A post that does not fit is
//! refused at once ([`Refusal::InboxFull`]): nothing grows with traffic. The poster
//! takes the inbox's lock only to copy its bytes in; the loop swaps the whole inbox for
//! an empty one of the same size under the lock and delivers outside it, so a handler
//! that posts while mail is being delivered never waits on a lock its own loop holds.

use std::sync::{Mutex, OnceLock, PoisonError};

use evio_proto::{ConnId, Events, HeapEngine, PostKind, PostOffice, Refusal, Waker};

/// One post waiting in an inbox; its bytes are `bytes[at..at + len]` of the mail.
#[derive(Clone, Copy, Debug)]
struct Post {
    from: usize,
    to: ConnId,
    kind: PostKind,
    at: usize,
    len: usize,
}

/// A refusal on its way back to the loop that posted.
#[derive(Clone, Copy, Debug)]
struct Returned {
    to: ConnId,
    kind: PostKind,
    len: usize,
    why: Refusal,
}

/// What an inbox holds between two turns of its loop (and what the loop delivers
/// from, once swapped out).
#[derive(Debug)]
struct Mail {
    posts: Vec<Post>,
    bytes: Vec<u8>,
    returned: Vec<Returned>,
}

impl Mail {
    fn with_room(posts: usize, bytes: usize, returned: usize) -> Self {
        Mail {
            posts: Vec::with_capacity(posts),
            bytes: Vec::with_capacity(bytes),
            returned: Vec::with_capacity(returned),
        }
    }

    fn clear(&mut self) {
        self.posts.clear();
        self.bytes.clear();
        self.returned.clear();
    }
}

/// One loop's inbox.
#[derive(Debug)]
struct Inbox {
    mail: Mutex<Mail>,
    /// The loop's waker, once it is up: how a poster tells its driver.
    waker: OnceLock<Waker>,
}

/// The inboxes of every loop of a server.
#[derive(Debug)]
pub(crate) struct Inboxes {
    boxes: Vec<Inbox>,
    posts: usize,
    bytes: usize,
    returned: usize,
}

/// A loop's spare mail: what it swaps in for its inbox's, and delivers from.
#[derive(Debug)]
pub(crate) struct Spare(Mail);

impl Inboxes {
    /// Inboxes for `loops` loops, each holding up to `posts` posts of `bytes` bytes in
    /// all, and as many refusals coming back.
    pub(crate) fn new(loops: usize, posts: usize, bytes: usize) -> Self {
        let returned = posts;
        Inboxes {
            boxes: (0..loops)
                .map(|_| Inbox {
                    mail: Mutex::new(Mail::with_room(posts, bytes, returned)),
                    waker: OnceLock::new(),
                })
                .collect(),
            posts,
            bytes,
            returned,
        }
    }

    /// The spare mail loop `index` delivers from: as large as its inbox.
    pub(crate) fn spare(&self) -> Spare {
        Spare(Mail::with_room(self.posts, self.bytes, self.returned))
    }

    /// Loop `index` is up: posts to it wake it through `waker` from now on. (Posts
    /// made before wait for its first delivery.)
    pub(crate) fn open(&self, index: usize, waker: Option<&Waker>) {
        if let (Some(inbox), Some(w)) = (self.boxes.get(index), waker) {
            let _ = inbox.waker.set(w.clone());
        }
    }

    fn notify(inbox: &Inbox) {
        if let Some(w) = inbox.waker.get() {
            w.notify_driver();
        }
    }

    fn lock(inbox: &Inbox) -> std::sync::MutexGuard<'_, Mail> {
        inbox.mail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands loop `index`'s mail to its engine: each post to `handle_post` (a refusal
    /// goes back to the loop that posted), each refusal to `handle_refusal`.
    pub(crate) fn deliver<H: Events>(
        &self,
        index: usize,
        engine: &mut HeapEngine<H>,
        spare: &mut Spare,
    ) {
        let Some(inbox) = self.boxes.get(index) else {
            return;
        };
        {
            let mut mail = Self::lock(inbox);
            if mail.posts.is_empty() && mail.returned.is_empty() {
                return;
            }
            std::mem::swap(&mut *mail, &mut spare.0);
        }
        let mail = &mut spare.0;
        for post in &mail.posts {
            let bytes = &mail.bytes[post.at..post.at + post.len];
            if let Err(why) = engine.handle_post(post.from, post.to, post.kind, bytes) {
                self.give_back(post, why);
            }
        }
        for r in &mail.returned {
            engine.handle_refusal(r.to, r.kind, r.len, r.why);
        }
        mail.clear();
    }

    /// `post`, refused for `why`, goes back to the loop that posted it.
    fn give_back(&self, post: &Post, why: Refusal) {
        let Some(inbox) = self.boxes.get(post.from) else {
            return;
        };
        {
            let mut mail = Self::lock(inbox);
            // As many as an inbox holds posts: more only if the loop's handlers posted
            // more than that to loops that refused them, within one turn of the loop;
            // those refusals are not told.
            if mail.returned.len() == self.returned {
                return;
            }
            mail.returned.push(Returned {
                to: post.to,
                kind: post.kind,
                len: post.len,
                why,
            });
        }
        Self::notify(inbox);
    }
}

impl PostOffice for Inboxes {
    fn post(&self, from: usize, to: ConnId, kind: PostKind, bytes: &[u8]) -> Result<(), Refusal> {
        let inbox = self.boxes.get(to.loop_index()).ok_or(Refusal::NoSuchLoop)?;
        {
            let mut mail = Self::lock(inbox);
            if mail.posts.len() == self.posts || self.bytes - mail.bytes.len() < bytes.len() {
                return Err(Refusal::InboxFull);
            }
            let at = mail.bytes.len();
            mail.bytes.extend_from_slice(bytes);
            mail.posts.push(Post {
                from,
                to,
                kind,
                at,
                len: bytes.len(),
            });
        }
        Self::notify(inbox);
        Ok(())
    }
}
