//! The input channel's transport: a viewer publishes its own broadcast,
//! `<session>/viewer/<id>`, beside the session's, and the host finds it by announcement.
//!
//! The viewer's broadcast has three tracks:
//! - `input`: one [`lantern_proto::input::Message`] per datagram (unreliable, latest wins;
//!   each carries the held set, so a lost one costs nothing lasting);
//! - `feedback`: one [`lantern_proto::feedback::Report`] per datagram, a few a second: what
//!   the viewer's path does, for the publisher's rate control;
//! - `grant`: one group with one frame, the public token of the viewer's grant (see
//!   [`crate::grant`]), when it has one. A granted viewer seals its `input` and `feedback`
//!   datagrams with the grant's secret ([`crate::seal`]); one without a grant still
//!   publishes plain `input`: the host reads it and counts it as unauthorized, never
//!   injecting it (unless the session is open to everyone).
//!
//! Through a relay the host subscribes to the viewers' prefix on the same connection it
//! publishes on; a direct server (`--listen`) takes the viewers' publishes itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use moq_net::{Pattern, Patterns};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::grant::Credential;
use crate::seal::{Sealer, Track};

pub const INPUT_TRACK: &str = "input";
pub const GRANT_TRACK: &str = "grant";
pub const FEEDBACK_TRACK: &str = "feedback";
/// How long an announced viewer's broadcast may take to open.
const OPEN_WAIT: Duration = Duration::from_secs(5);

fn input_err(what: impl Into<String>) -> impl FnOnce(moq_net::Error) -> Error {
    let what = what.into();
    move |source| Error::Input { what, source }
}

/// Where a session's viewers publish: `<session>/viewer`.
pub fn viewers_root(session: &str) -> String {
    format!("{session}/viewer")
}

/// `origin` narrowed to a session's viewers' broadcasts, paths unchanged: what a host's
/// connection subscribes into (and a direct server lets viewers publish into), so nothing
/// else can land there.
pub fn viewers_scope(
    origin: &moq_net::origin::Producer,
    session: &str,
) -> Result<moq_net::origin::Producer, Error> {
    let root = viewers_root(session);
    let pattern = Pattern::subtree(&root).map_err(|source| Error::ViewerPaths {
        session: session.to_string(),
        source,
    })?;
    origin
        .scope("", &Patterns::from(pattern))
        .map_err(input_err(format!("viewer paths under {session:?}")))
}

/// The viewer's end: its broadcast and the datagrams it sends.
pub struct InputPublisher {
    broadcast: moq_net::broadcast::Producer,
    input: moq_net::track::Producer,
    feedback: moq_net::track::Producer,
    _grant: Option<moq_net::track::Producer>,
    credential: Option<Credential>,
    seal: Option<Sealer>,
    path: String,
}

/// Where a viewer's feedback reports go (a handle on its broadcast's `feedback` track),
/// sealed when the viewer has a grant.
pub struct FeedbackSender {
    track: moq_net::track::Producer,
    seal: Option<Sealer>,
}

impl FeedbackSender {
    /// Send one report. Reports nobody subscribes to are not kept: the next one is newer.
    pub fn send(&mut self, report: &lantern_proto::feedback::Report) -> Result<(), Error> {
        let report = report.encode();
        let datagram = match &mut self.seal {
            Some(seal) => seal.seal(&report, lantern_proto::clock::now_unix_us()),
            None => report.to_vec(),
        };
        self.track
            .append_datagram(moq_net::Timestamp::now(), datagram)
            .map(drop)
            .map_err(input_err("feedback: send"))
    }
}

impl InputPublisher {
    /// Create and announce `<session>/viewer/<viewer>` in `origin`; with a grant, its token
    /// goes on the `grant` track and every datagram is sealed with its secret. `viewer`
    /// must be the grant's viewer when there is one.
    pub fn new(
        origin: &moq_net::origin::Producer,
        session: &str,
        viewer: &str,
        credential: Option<&Credential>,
    ) -> Result<Self, Error> {
        crate::grant::check_viewer_id(viewer)?;
        if let Some(credential) = credential
            && credential.viewer != viewer
        {
            return Err(Error::Config(format!(
                "the grant is for viewer {:?}, not {viewer:?}",
                credential.viewer
            )));
        }
        let path = format!("{}/{viewer}", viewers_root(session));
        let err = |what: &str| input_err(format!("{path}: {what}"));
        let broadcast = origin.create_broadcast(&path).map_err(err("broadcast"))?;
        let input = broadcast
            .create_track(INPUT_TRACK, None)
            .map_err(err("input track"))?;
        let feedback = broadcast
            .create_track(FEEDBACK_TRACK, None)
            .map_err(err("feedback track"))?;
        let grant = match credential {
            None => None,
            Some(credential) => {
                let mut track = broadcast
                    .create_track(GRANT_TRACK, None)
                    .map_err(err("grant track"))?;
                track
                    .write_frame(
                        moq_net::Timestamp::now(),
                        credential.token.as_bytes().to_vec(),
                    )
                    .map_err(err("grant"))?;
                Some(track)
            }
        };
        broadcast
            .announce(Default::default())
            .map_err(err("announce"))?;
        Ok(Self {
            broadcast,
            input,
            feedback,
            _grant: grant,
            seal: credential.map(|c| c.sealer(Track::Input, &path)),
            credential: credential.cloned(),
            path,
        })
    }

    /// A handle that sends feedback reports on this broadcast (one at a time: each handle
    /// seals on its own, and the host's replay window takes only the newest).
    pub fn feedback(&self) -> FeedbackSender {
        FeedbackSender {
            track: self.feedback.clone(),
            seal: self
                .credential
                .as_ref()
                .map(|c| c.sealer(Track::Feedback, &self.path)),
        }
    }

    /// The broadcast's path, `<session>/viewer/<id>`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether a host subscribes to the input (nothing sent before then reaches it).
    pub fn listened(&self) -> bool {
        self.input.is_used()
    }

    /// Wait until a host subscribes, up to `timeout`; false if none did.
    pub async fn wait_listened(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.input.used()).await,
            Ok(Ok(()))
        )
    }

    /// Send one datagram (sealed, with a grant). Datagrams sent while no host listens are
    /// not kept for it: a late press is worth nothing, and the held set of the next message
    /// says what is held.
    pub fn send(&mut self, datagram: Vec<u8>) -> Result<(), Error> {
        let datagram = match &mut self.seal {
            Some(seal) => seal.seal(&datagram, lantern_proto::clock::now_unix_us()),
            None => datagram,
        };
        self.input
            .append_datagram(moq_net::Timestamp::now(), datagram)
            .map(drop)
            .map_err(input_err(format!("{}: send", self.path)))
    }
}

impl Drop for InputPublisher {
    fn drop(&mut self) {
        self.broadcast.close();
    }
}

/// Viewers one session keeps at once. At the bound, a newcomer takes the place of the
/// oldest viewer not admitted (see [`Seat::admit`]: one without a valid grant, or whose grant
/// has not arrived yet); when every viewer present is admitted, the newcomer is turned away.
/// Strangers announcing paths cannot crowd out players.
pub const MAX_VIEWERS: usize = 256;
/// The largest grant token read: a JWT of a few hundred bytes. A larger frame is refused on
/// its declared size, before its payload is read.
pub const MAX_GRANT_BYTES: u64 = 4096;

/// A viewer that came or went.
pub enum ViewerUpdate {
    /// Boxed: the update stays small.
    Joined {
        id: String,
        input: Box<ViewerInput>,
    },
    Left {
        id: String,
    },
}

/// Announcements that did not become a viewer served, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Turned {
    /// Paths under the viewers' prefix that name no viewer (nested, or bad characters).
    pub not_viewers: u64,
    /// Viewers not admitted whose place a newcomer took, at [`MAX_VIEWERS`].
    pub displaced: u64,
    /// Newcomers turned away, every place being held by an admitted viewer.
    pub turned_away: u64,
}

#[derive(Default)]
struct TurnedCounts {
    not_viewers: AtomicU64,
    displaced: AtomicU64,
    turned_away: AtomicU64,
}

/// The counts of [`Turned`], shared with whoever reports them.
#[derive(Clone, Default)]
pub struct TurnedAway(Arc<TurnedCounts>);

impl TurnedAway {
    pub fn snapshot(&self) -> Turned {
        let c = &self.0;
        Turned {
            not_viewers: c.not_viewers.load(Ordering::Relaxed),
            displaced: c.displaced.load(Ordering::Relaxed),
            turned_away: c.turned_away.load(Ordering::Relaxed),
        }
    }
}

/// The host's end: the viewers of one session as they announce themselves.
pub struct Viewers {
    origin: moq_net::origin::Consumer,
    announced: moq_net::announce::Consumer,
    session: String,
    turned: TurnedAway,
}

impl Viewers {
    /// Watch `inbound` (where the connection or the direct server puts what peers publish)
    /// for `session`'s viewers.
    pub fn watch(inbound: &moq_net::origin::Producer, session: &str) -> Result<Self, Error> {
        // Rooted at the viewers' prefix, so each broadcast is named by its viewer id alone.
        let origin = inbound
            .scope(viewers_root(session), &Patterns::from(Pattern::all()))
            .map_err(input_err(format!("viewer paths under {session:?}")))?
            .consume();
        Ok(Self {
            announced: origin.announced(),
            origin,
            session: session.to_string(),
            turned: TurnedAway::default(),
        })
    }

    /// What was turned away so far (and from now on, while the viewers are served).
    pub fn turned(&self) -> TurnedAway {
        self.turned.clone()
    }

    /// The next viewer to join or leave; `None` once the origin closes. A path that is no
    /// viewer id (nested, or with characters an id may not have) is skipped and counted.
    /// Never waits on a viewer: its broadcast opens when first read.
    pub async fn next(&mut self) -> Option<ViewerUpdate> {
        loop {
            let update = self.announced.next().await?;
            let id = update.prefix.to_string();
            if crate::grant::check_viewer_id(&id).is_err() {
                // Anyone on the path can announce: counted, logged only for debugging.
                tracing::debug!(
                    session = self.session,
                    path = id,
                    "ignoring a broadcast that is no viewer"
                );
                self.turned.0.not_viewers.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !update.kind.is_active() {
                return Some(ViewerUpdate::Left { id });
            }
            return Some(ViewerUpdate::Joined {
                input: Box::new(ViewerInput {
                    origin: self.origin.clone(),
                    id: id.clone(),
                    broadcast: Default::default(),
                }),
                id,
            });
        }
    }
}

/// A viewer as [`Viewers::serve_each`] hands it to its task.
pub struct Joined {
    /// A number never reused in this session.
    pub slot: u64,
    pub id: String,
    pub input: ViewerInput,
    /// Mark it admitted once it is let in, so strangers cannot take its place.
    pub seat: Seat,
    /// Cancelled when the viewer leaves, announces itself again, or loses its place.
    pub stop: CancellationToken,
}

/// Whether a viewer is admitted (see [`MAX_VIEWERS`]).
#[derive(Clone, Default)]
pub struct Seat(Arc<AtomicBool>);

impl Seat {
    /// Admitted (a valid grant), or no longer (the grant ended).
    pub fn admit(&self, admitted: bool) {
        self.0.store(admitted, Ordering::Relaxed);
    }

    fn is_admitted(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

struct Present {
    slot: u64,
    seat: Seat,
    stop: CancellationToken,
}

impl Viewers {
    /// Give each viewer as it joins to `serve`, run as a task of its own, until the origin
    /// closes or `cancel` fires; then stop every task and wait for them. At most
    /// [`MAX_VIEWERS`] at once (see there for who gives way). Finished tasks are reaped as
    /// viewers come, so the set stays as large as the viewers present.
    pub async fn serve_each<F, Fut>(mut self, cancel: &CancellationToken, mut serve: F)
    where
        F: FnMut(Joined) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut tasks = tokio::task::JoinSet::new();
        let mut present: HashMap<String, Present> = HashMap::new();
        let mut next_slot = 0u64;
        loop {
            let update = tokio::select! {
                update = self.next() => update,
                () = cancel.cancelled() => break,
            };
            match update {
                None => break,
                Some(ViewerUpdate::Joined { id, input }) => {
                    if let Some(old) = present.remove(&id) {
                        old.stop.cancel();
                    }
                    if present.len() >= MAX_VIEWERS && !self.make_room(&mut present) {
                        tracing::debug!(viewer = id, "turning a viewer away: every place is taken");
                        continue;
                    }
                    next_slot += 1;
                    let (stop, seat) = (cancel.child_token(), Seat::default());
                    present.insert(
                        id.clone(),
                        Present {
                            slot: next_slot,
                            seat: seat.clone(),
                            stop: stop.clone(),
                        },
                    );
                    tasks.spawn(serve(Joined {
                        slot: next_slot,
                        id,
                        input: *input,
                        seat,
                        stop,
                    }));
                }
                Some(ViewerUpdate::Left { id }) => {
                    if let Some(left) = present.remove(&id) {
                        left.stop.cancel();
                    }
                }
            }
            while tasks.try_join_next().is_some() {}
        }
        for left in present.values() {
            left.stop.cancel();
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Stop the oldest viewer not admitted, if there is one, to make room for a newcomer.
    fn make_room(&self, present: &mut HashMap<String, Present>) -> bool {
        let oldest = present
            .iter()
            .filter(|(_, p)| !p.seat.is_admitted())
            .min_by_key(|(_, p)| p.slot)
            .map(|(id, _)| id.clone());
        let counts = &self.turned.0;
        match oldest.and_then(|id| present.remove(&id)) {
            Some(displaced) => {
                displaced.stop.cancel();
                counts.displaced.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => {
                counts.turned_away.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// A grant frame larger than [`MAX_GRANT_BYTES`]: its declared size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge(pub u64);

/// One viewer's broadcast, as the host reads it: opened when first read.
pub struct ViewerInput {
    origin: moq_net::origin::Consumer,
    id: String,
    broadcast: tokio::sync::OnceCell<moq_net::broadcast::Consumer>,
}

impl ViewerInput {
    /// The viewer's broadcast, opened within [`OPEN_WAIT`].
    async fn broadcast(&self) -> Result<&moq_net::broadcast::Consumer, Error> {
        self.broadcast
            .get_or_try_init(|| async {
                let what = || format!("viewer {:?}'s broadcast", self.id);
                match tokio::time::timeout(
                    OPEN_WAIT,
                    self.origin.request_broadcast(self.id.as_str()),
                )
                .await
                {
                    Ok(opened) => opened.map_err(input_err(what())),
                    Err(_) => Err(Error::InputTimeout {
                        what: what(),
                        timeout: OPEN_WAIT,
                    }),
                }
            })
            .await
    }

    /// The grant token the viewer presents, waiting up to `timeout` for it; `None` when the
    /// viewer has none (no `grant` track, or nothing on it in time); [`TooLarge`] when it
    /// presents more than a token can be (refused before it is read).
    pub async fn grant(&self, timeout: Duration) -> Result<Option<Vec<u8>>, TooLarge> {
        let read = async {
            let track = self.broadcast().await.ok()?.track(GRANT_TRACK).ok()?;
            let mut subscriber = track.subscribe(None).await.ok()?;
            let mut group = subscriber.recv_group().await.ok()??;
            let mut frame = group.next_frame().await.ok()??;
            if frame.size > MAX_GRANT_BYTES {
                return Some(Err(TooLarge(frame.size)));
            }
            frame.read_all().await.ok().map(|token| Ok(token.to_vec()))
        };
        tokio::time::timeout(timeout, read)
            .await
            .ok()
            .flatten()
            .transpose()
    }

    /// Subscribe to the viewer's input datagrams.
    pub async fn subscribe(&self) -> Result<moq_net::track::Subscriber, Error> {
        self.datagrams(INPUT_TRACK).await
    }

    /// Subscribe to the viewer's feedback reports.
    pub async fn feedback(&self) -> Result<moq_net::track::Subscriber, Error> {
        self.datagrams(FEEDBACK_TRACK).await
    }

    async fn datagrams(&self, name: &str) -> Result<moq_net::track::Subscriber, Error> {
        let what = || input_err(format!("a viewer's {name} track"));
        let track = self.broadcast().await?.track(name).map_err(what())?;
        track.subscribe(None).await.map_err(what())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn a_host_finds_its_viewers_reads_their_grants_and_datagrams_and_sees_them_go() {
        let origin = moq_tokio::origin::spawn();
        let mut viewers = Viewers::watch(&origin, "game").unwrap();
        // Another session's viewer and the session itself are not this session's viewers.
        let _other = InputPublisher::new(&origin, "other", "zed", None).unwrap();
        let _session = origin.create_broadcast("game").unwrap();
        let grants = crate::grant::Grants::generate("game");
        let grant = grants
            .issue(Some("alice"), Duration::from_secs(60))
            .unwrap();
        let credential = Credential::parse(&grant.credential).unwrap();
        assert!(InputPublisher::new(&origin, "game", "bob", Some(&credential)).is_err());
        let mut alice = InputPublisher::new(&origin, "game", "alice", Some(&credential)).unwrap();
        assert_eq!(alice.path(), "game/viewer/alice");

        let Some(ViewerUpdate::Joined { id, input }) =
            tokio::time::timeout(WAIT, viewers.next()).await.unwrap()
        else {
            panic!("expected a viewer to join");
        };
        assert_eq!(id, "alice");
        // The grant track carries the public token, never the secret.
        let token = input.grant(WAIT).await.unwrap().unwrap();
        assert_eq!(token, credential.token.as_bytes());
        let checked = grants
            .check(std::str::from_utf8(&token).unwrap(), "alice")
            .unwrap();
        let mut datagrams = input.subscribe().await.unwrap();
        assert!(alice.wait_listened(WAIT).await);
        alice.send(b"one".to_vec()).unwrap();
        let got = tokio::time::timeout(WAIT, datagrams.recv_datagram())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // Sealed on the wire, opened by the host.
        assert_ne!(&got.payload[..], b"one");
        let opener = checked.opener(Track::Input, alice.path());
        let opened = grants.open(&checked, &opener, Track::Input, &got.payload);
        assert_eq!(opened.unwrap().plain, b"one");

        let mut reports = input.feedback().await.unwrap();
        let report = lantern_proto::feedback::Report {
            window_ms: 100,
            queue_ms: 42,
            ..Default::default()
        };
        // A report sent before the subscription reached the track is not kept: send until one
        // arrives.
        let mut sender = alice.feedback();
        let got = tokio::time::timeout(WAIT, async {
            loop {
                sender.send(&report).unwrap();
                tokio::select! {
                    got = reports.recv_datagram() => break got.unwrap().unwrap(),
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        })
        .await
        .unwrap();
        let opener = checked.opener(Track::Feedback, "game/viewer/alice");
        let got = grants
            .open(&checked, &opener, Track::Feedback, &got.payload)
            .unwrap();
        let got = lantern_proto::feedback::Report::decode(&got.plain).unwrap();
        assert_eq!(got.queue_ms, 42);

        drop(alice);
        let left = tokio::time::timeout(WAIT, viewers.next()).await.unwrap();
        assert!(matches!(left, Some(ViewerUpdate::Left { id }) if id == "alice"));
    }

    #[tokio::test]
    async fn a_grant_frame_larger_than_a_token_is_refused_on_its_size() {
        let origin = moq_tokio::origin::spawn();
        let mut viewers = Viewers::watch(&origin, "game").unwrap();
        let broadcast = origin.create_broadcast("game/viewer/mallory").unwrap();
        let mut grant = broadcast.create_track(GRANT_TRACK, None).unwrap();
        grant
            .write_frame(moq_net::Timestamp::now(), vec![b'e'; 2 << 20])
            .unwrap();
        broadcast.announce(Default::default()).unwrap();
        let Some(ViewerUpdate::Joined { input, .. }) = viewers.next().await else {
            panic!("expected a viewer to join");
        };
        assert_eq!(input.grant(WAIT).await, Err(TooLarge(2 << 20)));
    }

    #[tokio::test]
    async fn strangers_announcing_viewers_cannot_crowd_out_an_admitted_one() {
        use std::sync::Mutex;
        let origin = moq_tokio::origin::spawn();
        let viewers = Viewers::watch(&origin, "game").unwrap();
        let turned = viewers.turned();
        let cancel = CancellationToken::new();
        // (viewers served, viewers stopped)
        let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let serving = {
            let (seen, cancel) = (seen.clone(), cancel.clone());
            tokio::spawn(async move {
                viewers
                    .serve_each(&cancel, move |joined| {
                        joined.seat.admit(joined.id == "alice");
                        seen.lock().unwrap().0.push(joined.id.clone());
                        let seen = seen.clone();
                        async move {
                            joined.stop.cancelled().await;
                            seen.lock().unwrap().1.push(joined.id);
                        }
                    })
                    .await
            })
        };
        let _alice = InputPublisher::new(&origin, "game", "alice", None).unwrap();
        let strangers = 300;
        let _fakes: Vec<_> = (0..strangers)
            .map(|i| InputPublisher::new(&origin, "game", &format!("fake{i}"), None).unwrap())
            .collect();
        let _nested = origin.create_broadcast("game/viewer/a/b").unwrap();
        _nested.announce(Default::default()).unwrap();
        tokio::time::timeout(WAIT, async {
            while seen.lock().unwrap().0.len() < strangers + 1 || turned.snapshot().not_viewers < 1
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        let displaced = (strangers + 1 - MAX_VIEWERS) as u64;
        tokio::time::timeout(WAIT, async {
            while (seen.lock().unwrap().1.len() as u64) < displaced {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        let (served, stopped) = seen.lock().unwrap().clone();
        assert_eq!(served.len(), strangers + 1);
        // The oldest strangers gave way, alice (admitted) did not.
        assert_eq!(stopped.len() as u64, displaced);
        assert!(!stopped.contains(&"alice".to_string()));
        assert_eq!(
            turned.snapshot(),
            Turned {
                not_viewers: 1,
                displaced,
                turned_away: 0
            }
        );
        cancel.cancel();
        serving.await.unwrap();
    }

    #[tokio::test]
    async fn a_viewer_without_a_grant_has_no_grant_to_read() {
        let origin = moq_tokio::origin::spawn();
        let mut viewers = Viewers::watch(&origin, "game").unwrap();
        let _bob = InputPublisher::new(&origin, "game", "bob", None).unwrap();
        let Some(ViewerUpdate::Joined { input, .. }) = viewers.next().await else {
            panic!("expected a viewer to join");
        };
        assert_eq!(input.grant(Duration::from_millis(200)).await, Ok(None));
        assert!(InputPublisher::new(&origin, "game", "a/b", None).is_err());
    }
}
