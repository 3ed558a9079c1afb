//! Viewers' input into a session: found by announcement, authorized, validated, injected.
//!
//! Each viewer that publishes `<session>/viewer/<id>` gets a task that reads its grant's
//! token (see `lantern_net::grant`), opens each of its sealed datagrams with the grant's
//! keys (refusing replays for the grant's lifetime, see `lantern_net::seal`), passes them
//! through a [`Gate`] of its own (drops by reason, each press and release once), and hands
//! what passes to the injector thread: the compositor's virtual keyboard and pointer
//! ([`inject`]) and uinput pads ([`pads`]). A viewer that leaves, goes silent, or whose
//! grant expires or is revoked has everything it held released. Nothing from a viewer
//! without a valid grant is ever decoded or injected (unless the session's input is
//! `open`, where plain datagrams are read too); its datagrams are counted by the grant's
//! fault.

pub mod helper;
pub mod inject;
pub mod pads;
mod queue;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lantern_net::grant::{self, Checked, Grants, Read, Refusal};
use lantern_net::input::{Joined, Seat, TooLarge, Turned, TurnedAway, ViewerInput, Viewers};
use lantern_net::seal::{Opener, Track, Unsealed};
use lantern_proto::clock;
use lantern_proto::histogram::Histogram;
use lantern_proto::input::{Event, Gate, HEARTBEAT_US, Limits, Rejected, Taken};
use tokio_util::sync::CancellationToken;

use crate::Error;
use queue::{Command, Next, Queue};

/// Whose input a session injects.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// Only viewers with a grant this session signed (`ctl grant`, or the one `run` prints).
    #[default]
    Granted,
    /// Every viewer that can reach the session: for a trusted network only.
    Open,
    /// No input at all: a view-only session.
    Off,
}

/// A session's input settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub auth: Auth,
    /// The session's grant key (`Granted`).
    pub grants: Arc<Grants>,
    /// The session's account, whose alone its players' pads are (see [`pads`]); `None`: as
    /// udev makes them.
    pub pads_for: Option<pads::Owner>,
}

/// How long the session's input helper may take to connect to the compositor.
const START_WAIT: Duration = Duration::from_secs(10);

/// How long a joining viewer's grant may take to arrive.
const GRANT_WAIT: Duration = Duration::from_secs(5);

/// What a session's input did, for `--stats` and the control API.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct InputStats {
    /// Viewers publishing input now, and how many of them hold a valid grant.
    pub viewers: u32,
    pub authorized: u32,
    /// Datagrams received, and taken by the gate.
    pub datagrams: u64,
    pub accepted: u64,
    /// Events that reached the compositor (a typed character counts once).
    pub injected: u64,
    /// Gamepad states received, and those that reached a uinput pad.
    pub pad_states: u64,
    pub pads_injected: u64,
    /// Viewers whose held keys, buttons and pads were released (left, silent, expired).
    pub released: u64,
    /// Key and button edges played from a later datagram's repeats, their own having been
    /// lost on the way.
    pub recovered: u64,
    pub dropped: Dropped,
    /// The input leg: the viewer's send → injected here (both wall clocks: across machines
    /// it includes their offset).
    pub leg_ms_p50: Option<f64>,
    pub leg_ms_p99: Option<f64>,
    /// Of it, the host's own part: datagram received → injected (gate, queue, Wayland).
    pub inject_ms_p50: Option<f64>,
    pub inject_ms_p99: Option<f64>,
    /// Announcements on the session's viewer paths that were not served (see
    /// `lantern_net::input::MAX_VIEWERS`).
    pub turned: Turned,
    /// Why nothing is injected, when the injector failed.
    pub error: Option<String>,
}

/// Datagrams (and parts of them) dropped, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Dropped {
    /// From viewers with no grant at all.
    pub unauthorized: u64,
    /// From viewers whose grant was signed with another key, or altered.
    pub forged: u64,
    pub expired: u64,
    /// Grants for another session or another viewer path.
    pub elsewhere: u64,
    /// Grants that are no JWT.
    pub bad_grant: u64,
    /// Grant frames larger than any token, refused unread.
    pub oversized_grant: u64,
    /// Grants the host revoked (`ctl revoke`), before or while the viewer played.
    pub revoked: u64,
    /// Plain datagrams from a granted viewer, where sealed ones are due.
    pub unsealed: u64,
    /// Seals that do not open: made without the grant's secret, for another path, or altered.
    pub bad_seal: u64,
    /// Sealed datagrams taken before under the same grant, played again.
    pub replayed: u64,
    pub rate_limited: u64,
    pub malformed: u64,
    pub duplicate: u64,
    pub out_of_order: u64,
    /// Datagrams that came too late for their motion, which was dropped (their presses and
    /// releases were not).
    pub late_motion: u64,
    /// Characters the keymap cannot type.
    pub untypable: u64,
    /// Touch points beyond the first.
    pub extra_touches: u64,
    /// Characters of text over a viewer's text budget.
    pub text_limited: u64,
    /// Batches dropped because the viewer already had as many waiting for the compositor as
    /// it may (a compositor slower than the viewer's input).
    pub queue_full: u64,
}

/// The input totals a session shares between its tasks and its stats.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Totals>>);

#[derive(Default)]
struct Totals {
    stats: InputStats,
    leg: Histogram,
    inject: Histogram,
    turned: TurnedAway,
}

impl Shared {
    /// The totals so far.
    pub fn snapshot(&self) -> InputStats {
        let totals = self.lock();
        let ms = |h: &Histogram, q| h.quantile(q).map(|us| us as f64 / 1000.0);
        InputStats {
            leg_ms_p50: ms(&totals.leg, 0.5),
            leg_ms_p99: ms(&totals.leg, 0.99),
            inject_ms_p50: ms(&totals.inject, 0.5),
            inject_ms_p99: ms(&totals.inject, 0.99),
            turned: totals.turned.snapshot(),
            ..totals.stats.clone()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Totals> {
        // Counters only: a panic elsewhere leaves them usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut InputStats)) {
        f(&mut self.lock().stats);
    }
}

/// Take `session`'s viewers from `inbound` and inject through the session's input helper
/// (see [`helper`]), whose pipes these are, until `cancel` fires. An injector that cannot start is reported in the stats (`error`) and
/// logged; the stream goes on view-only.
pub async fn run(
    inbound: moq_net::origin::Producer,
    session: String,
    (to, from): (std::io::PipeWriter, std::io::PipeReader),
    settings: Settings,
    shared: Shared,
    feedback: moq_pub::rate::Feedback,
    cancel: CancellationToken,
) {
    let viewers = match Viewers::watch(&inbound, &session) {
        Ok(viewers) => viewers,
        Err(err) => return fail(&shared, &err),
    };
    shared.lock().turned = viewers.turned();
    let commands = Arc::new(Queue::default());
    let pads_for = settings.pads_for;
    let injector = {
        let (shared, cancel, queue) = (shared.clone(), cancel.clone(), commands.clone());
        tokio::task::spawn_blocking(move || {
            let result = inject_loop((to, from), pads_for, &queue, &shared, &cancel);
            // Nothing more is taken: viewers' input is dropped (counted) from now on.
            queue.close();
            result
        })
    };
    viewers
        .serve_each(&cancel, |joined: Joined| {
            let id = joined.id;
            let viewer = Viewer {
                slot: joined.slot,
                path: format!("{}/{id}", lantern_net::input::viewers_root(&session)),
                id,
                settings: settings.clone(),
                commands: commands.clone(),
                shared: shared.clone(),
                feedback: feedback.clone(),
                seat: joined.seat,
            };
            viewer.run(joined.input, joined.stop)
        })
        .await;
    commands.close();
    if let Ok(Err(err)) = injector.await {
        fail(&shared, &err);
    }
}

fn fail(shared: &Shared, err: &(dyn std::error::Error + 'static)) {
    tracing::warn!(
        err,
        "viewers' input cannot be injected: the session is view-only"
    );
    shared.count(|s| s.error = Some(lantern_proto::error_line(err)));
}

/// One viewer's input.
struct Viewer {
    slot: u64,
    id: String,
    /// Its broadcast's path, `<session>/viewer/<id>`: what its seals are bound to.
    path: String,
    settings: Settings,
    commands: Arc<Queue>,
    shared: Shared,
    /// Where an authorized viewer's feedback reports go (the adaptive bitrate).
    feedback: moq_pub::rate::Feedback,
    /// Held while the viewer is authorized, so strangers cannot take its place.
    seat: Seat,
}

/// Why a viewer's datagrams are not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unauthorized {
    NoGrant,
    Refused(Refusal),
    /// A grant frame larger than any token.
    Oversized,
}

/// Why one datagram of an authorized viewer is not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unread {
    Grant(Unauthorized),
    Seal(grant::Dropped),
}

/// What lets a viewer in: a grant (its datagrams sealed with the grant's keys), or a
/// session open to everyone (plain datagrams).
enum Standing {
    Granted {
        checked: Checked,
        input: Opener,
        feedback: Opener,
    },
    Open,
}

impl Standing {
    /// The datagram's plain bytes, opened (and its counter taken) when the viewer is granted.
    fn read(&self, grants: &Grants, track: Track, datagram: &[u8]) -> Result<Read, Unread> {
        match self {
            Self::Open => Ok(Read {
                plain: datagram.to_vec(),
                new_sender: false,
            }),
            Self::Granted {
                checked,
                input,
                feedback,
            } => {
                let opener = match track {
                    Track::Input => input,
                    Track::Feedback => feedback,
                };
                grants
                    .open(checked, opener, track, datagram)
                    .map_err(Unread::Seal)
            }
        }
    }
}

impl Viewer {
    async fn run(self, input: ViewerInput, stop: CancellationToken) {
        let token = match self.settings.auth {
            Auth::Granted | Auth::Open => input.grant(GRANT_WAIT).await,
            Auth::Off => Ok(None),
        };
        let mut standing = match &token {
            Ok(token) => self.authorize(token.as_deref()),
            Err(TooLarge(size)) => {
                tracing::debug!(
                    viewer = self.id,
                    size,
                    "a grant frame too large to be a token"
                );
                self.shared.count(|s| s.dropped.oversized_grant += 1);
                Err(Unauthorized::Oversized)
            }
        }
        .map(Arc::new);
        self.seat.admit(standing.is_ok());
        tracing::info!(
            viewer = self.id,
            authorized = standing.is_ok(),
            "a viewer joined"
        );
        self.shared.count(|s| {
            s.viewers += 1;
            s.authorized += u32::from(standing.is_ok());
        });
        let standing_now = standing.as_ref().ok().cloned();
        // Only an authorized viewer's feedback moves the bitrate: a spectator never pulls
        // the stream down for everyone. It stops counting when the grant ends.
        let reporting = stop.child_token();
        let grants = &self.settings.grants;
        let reports = async {
            if let Some(standing) = &standing_now
                && let Ok(reports) = input.feedback().await
            {
                let open = |d: &[u8]| Some(standing.read(grants, Track::Feedback, d).ok()?.plain);
                moq_pub::rate::forward(reports, self.slot, &self.feedback, &reporting, open).await;
            }
            self.feedback.left(self.slot);
        };
        tokio::pin!(reports);
        let mut reported = false;
        if standing.is_ok() {
            self.commands.push(self.slot, Command::Join);
        }
        let mut datagrams = tokio::select! {
            subscribed = input.subscribe() => match subscribed {
                Ok(datagrams) => Some(datagrams),
                Err(err) => {
                    tracing::warn!(viewer = self.id, err = &err as &dyn std::error::Error, "cannot read a viewer's input");
                    None
                }
            },
            () = stop.cancelled() => None,
        };
        let mut gate = Gate::new(Limits::default());
        let mut tick = tokio::time::interval(Duration::from_micros(HEARTBEAT_US));
        let mut revocations = grants.revocations();
        let mut events = Vec::new();
        while let Some(subscriber) = datagrams.as_mut() {
            tokio::select! {
                datagram = subscriber.recv_datagram() => {
                    let Ok(Some(datagram)) = datagram else { break };
                    let arrived = clock::now_unix_us();
                    // An unauthorized viewer's datagrams are counted, never opened or decoded.
                    let received = standing
                        .as_ref()
                        .map_err(|why| Unread::Grant(*why))
                        .and_then(|standing| standing.read(grants, Track::Input, &datagram.payload))
                        .map(|read| {
                            if read.new_sender {
                                gate.new_sender();
                            }
                            gate.receive(&read.plain, arrived, &mut events)
                        });
                    self.shared.count(|s| {
                        s.datagrams += 1;
                        match received {
                            Err(why) => count_unread(&mut s.dropped, why),
                            Ok(received) => count_gate(s, received),
                        }
                    });
                    if let Ok(Ok(taken)) = received {
                        self.send(std::mem::take(&mut events), Some((taken.sent_us, arrived)));
                    }
                }
                Ok(()) = revocations.changed() => self.check_grant(&mut standing, &mut gate, &reporting),
                _ = tick.tick() => {
                    self.check_grant(&mut standing, &mut gate, &reporting);
                    if gate.check_silence(clock::now_unix_us(), &mut events) && !events.is_empty() {
                        tracing::debug!(viewer = self.id, "a silent viewer's keys released");
                        self.shared.count(|s| s.released += 1);
                        self.send(std::mem::take(&mut events), None);
                    }
                }
                () = &mut reports, if !reported => reported = true,
                () = stop.cancelled() => break,
            }
        }
        reporting.cancel();
        if !reported {
            reports.await;
        }
        self.release(&mut gate);
        self.commands.push(self.slot, Command::Forget);
        tracing::info!(viewer = self.id, "a viewer left");
        self.shared.count(|s| {
            s.viewers -= 1;
            s.authorized -= u32::from(standing.is_ok());
        });
    }

    /// What lets the viewer in, if anything: a valid grant (in an open session too, where
    /// a viewer without one sends plain datagrams).
    fn authorize(&self, token: Option<&[u8]>) -> Result<Standing, Unauthorized> {
        let checked = || {
            let token = token.ok_or(Unauthorized::NoGrant)?;
            let token = std::str::from_utf8(token)
                .map_err(|_| Unauthorized::Refused(Refusal::Malformed))?;
            let checked = self
                .settings
                .grants
                .check(token, &self.id)
                .map_err(Unauthorized::Refused)?;
            Ok(Standing::Granted {
                input: checked.opener(Track::Input, &self.path),
                feedback: checked.opener(Track::Feedback, &self.path),
                checked,
            })
        };
        match self.settings.auth {
            Auth::Off => Err(Unauthorized::NoGrant),
            Auth::Granted => checked(),
            Auth::Open => Ok(checked().unwrap_or(Standing::Open)),
        }
    }

    /// A grant that expires or is revoked while the viewer plays ends its input there: what
    /// it sent that still waits for the injector is dropped (counted), what it holds released.
    fn check_grant(
        &self,
        standing: &mut Result<Arc<Standing>, Unauthorized>,
        gate: &mut Gate,
        reporting: &CancellationToken,
    ) {
        let Ok(Standing::Granted { checked, .. }) = standing.as_deref() else {
            return;
        };
        let Err(why) = self.settings.grants.live(&checked.id) else {
            return;
        };
        tracing::info!(
            viewer = self.id,
            grant = why.as_str(),
            "a viewer's grant ended"
        );
        *standing = Err(Unauthorized::Refused(why));
        self.seat.admit(false);
        reporting.cancel();
        let discarded = self.commands.discard(self.slot) as u64;
        self.shared.count(|s| {
            s.authorized -= 1;
            let dropped = match why {
                Refusal::Expired => &mut s.dropped.expired,
                _ => &mut s.dropped.revoked,
            };
            *dropped += discarded;
        });
        self.release(gate);
    }

    fn release(&self, gate: &mut Gate) {
        let mut events = Vec::new();
        gate.release_all(&mut events);
        if !events.is_empty() {
            self.shared.count(|s| s.released += 1);
            self.send(events, None);
        }
    }

    fn send(&self, events: Vec<Event>, sent_us: Option<(u64, u64)>) {
        if events.is_empty() {
            return;
        }
        let command = Command::Inject { events, sent_us };
        if !self.commands.push(self.slot, command) {
            self.shared.count(|s| s.dropped.queue_full += 1);
        }
    }
}

fn count_unread(dropped: &mut Dropped, why: Unread) {
    *match why {
        Unread::Grant(Unauthorized::NoGrant | Unauthorized::Oversized) => &mut dropped.unauthorized,
        Unread::Grant(Unauthorized::Refused(Refusal::Forged)) => &mut dropped.forged,
        Unread::Grant(Unauthorized::Refused(Refusal::Expired)) => &mut dropped.expired,
        Unread::Grant(Unauthorized::Refused(Refusal::Elsewhere)) => &mut dropped.elsewhere,
        Unread::Grant(Unauthorized::Refused(Refusal::Malformed)) => &mut dropped.bad_grant,
        Unread::Grant(Unauthorized::Refused(Refusal::Revoked))
        | Unread::Seal(grant::Dropped::Revoked) => &mut dropped.revoked,
        Unread::Seal(grant::Dropped::Unsealed(Unsealed::Plain)) => &mut dropped.unsealed,
        Unread::Seal(grant::Dropped::Unsealed(Unsealed::Malformed | Unsealed::Forged)) => {
            &mut dropped.bad_seal
        }
        Unread::Seal(grant::Dropped::Replayed) => &mut dropped.replayed,
    } += 1;
}

fn count_gate(stats: &mut InputStats, received: Result<Taken, Rejected>) {
    let dropped = &mut stats.dropped;
    *match received {
        Ok(taken) => {
            dropped.late_motion += u64::from(taken.late);
            dropped.text_limited += u64::from(taken.text_limited);
            stats.recovered += u64::from(taken.recovered);
            &mut stats.accepted
        }
        Err(Rejected::RateLimited) => &mut dropped.rate_limited,
        Err(Rejected::Malformed) => &mut dropped.malformed,
        Err(Rejected::Duplicate) => &mut dropped.duplicate,
        Err(Rejected::OutOfOrder) => &mut dropped.out_of_order,
    } += 1;
}

/// The injector thread: a Wayland connection of its own, pads through uinput; viewers'
/// commands taken in turn from `queue` until it is closed and empty.
fn inject_loop(
    (to, from): (std::io::PipeWriter, std::io::PipeReader),
    pads_for: Option<pads::Owner>,
    queue: &Queue,
    shared: &Shared,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let mut injector = helper::Piped::open(to, from, START_WAIT)?;
    let mut pads = pads::Pads::open(pads_for);
    let mut warned = false;
    loop {
        pads.settle();
        match queue.next(Duration::from_millis(100)) {
            Next::Command(
                viewer,
                Command::Inject {
                    mut events,
                    sent_us,
                },
            ) => {
                let (mut pad_states, mut pads_injected) = (0, 0);
                for event in &events {
                    if let Event::Gamepad(pad) = event {
                        pad_states += 1;
                        match pads.apply(viewer, pad) {
                            Ok(true) => pads_injected += 1,
                            Ok(false) => {
                                if let (pads::Pads::Unavailable(why), false) = (&pads, warned) {
                                    tracing::warn!("{why}");
                                    warned = true;
                                }
                            }
                            Err(err) => tracing::warn!(%err, "a uinput pad failed"),
                        }
                    }
                }
                events.retain(|e| !matches!(e, Event::Gamepad(_)));
                let done = injector.inject(viewer, &events)?;
                let now = clock::now_unix_us();
                let mut totals = shared.lock();
                if let Some((sent_us, arrived_us)) = sent_us {
                    totals.leg.record(now.saturating_sub(sent_us));
                    totals.inject.record(now.saturating_sub(arrived_us));
                }
                let stats = &mut totals.stats;
                stats.injected += done.events;
                stats.pad_states += pad_states;
                stats.pads_injected += pads_injected;
                stats.dropped.untypable += done.untypable;
                stats.dropped.extra_touches += done.extra_touches;
            }
            Next::Command(viewer, Command::Join) => injector.join(viewer)?,
            Next::Command(viewer, Command::Forget) => {
                pads.forget(viewer);
                injector.forget(viewer)?;
            }
            Next::Idle => {
                if cancel.is_cancelled() {
                    return Ok(());
                }
                injector.check()?;
            }
            Next::Closed => return Ok(()),
        }
    }
}
