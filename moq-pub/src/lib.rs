//! moq-pub: encode pictures and sound from any source and publish them as a hang broadcast
//! over MoQ, to a relay or straight to subscribers (`--listen`).
//!
//! [`publish`] takes any video [`Source`](source::Source) (the test cube, a y4m stream, a
//! compositor's capture), an optional [`AudioSource`](audio::AudioSource), a cancellation
//! token and a channel for [`Event`]s; it prints nothing and installs no signal handler. The
//! binary is a thin wrapper that opens the sources its flags name and prints the events.
//!
//! The same encoded frames can also go out as plain RTP ([`Options::rtp`], see [`rtp`]),
//! alongside MoQ or alone.

pub mod audio;
pub mod encode;
mod error;
mod outlet;
mod pipeline;
pub mod publish;
pub mod rate;
pub mod rtp;
pub mod source;
pub mod stats;

use std::time::Duration;

use lantern_net::ConnectArgs;
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use stats::{Event, Summary};

/// Where publishing reports what happens (stats once a second, the connection). Sends never
/// block; events nobody reads are dropped with the receiver.
pub type Events = tokio::sync::mpsc::UnboundedSender<Event>;

/// Where the broadcast goes.
#[derive(Clone)]
pub enum Target {
    /// Publish to a relay.
    Relay(ConnectArgs),
    /// Serve subscribers directly.
    Listen(lantern_net::listen::Serve),
    /// Publish into this origin, in this process (a caller serving it itself, or a test).
    Origin(moq_net::origin::Producer),
    /// No MoQ at all: only the RTP copy ([`Options::rtp`]).
    RtpOnly,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Relay(args) => f.debug_tuple("Relay").field(&args.url).finish(),
            Self::Listen(serve) => f.debug_tuple("Listen").field(&serve.addr).finish(),
            Self::Origin(_) => f.write_str("Origin"),
            Self::RtpOnly => f.write_str("RtpOnly"),
        }
    }
}

/// Everything a publishing run needs besides its sources.
#[derive(Clone, Debug)]
pub struct Options {
    /// Broadcast name (under the URL's path on a relay).
    pub name: String,
    pub target: Target,
    /// Encoder flags; unset bitrate and GOP follow the source's format.
    pub video: encode::VideoArgs,
    /// Fixed or adaptive bitrate, and its bounds.
    pub rate: rate::RateArgs,
    /// Where the viewers' feedback that counts is put (see [`rate`]); `None`: no viewer's
    /// feedback, the rate follows only the connection's own estimate.
    pub feedback: Option<rate::Feedback>,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Draw the frame stamp into pictures that carry none (test content; `--stamp`).
    pub stamp: bool,
    pub audio: audio::AudioSettings,
    /// Where what peers publish back on this run's connection goes (the viewers' input,
    /// which a host reads): a relay connection also subscribes into it, a direct server
    /// takes peers' publishes into it. Scope it (see `lantern_net::input::viewers_scope`):
    /// only what it allows is taken. `None`: publish only.
    pub inbound: Option<Inbound>,
    /// Also send the encoded frames as RTP here (video on its port, sound two above); the
    /// SDP that describes them comes as [`Event::Rtp`] before the first frame.
    pub rtp: Option<rtp::RtpUrl>,
    /// Record the broadcast as published into this fragmented MP4 file (see
    /// `lantern_net::record`).
    pub record: Option<std::path::PathBuf>,
}

/// Where peers' publishes go (see [`Options::inbound`]).
#[derive(Clone)]
pub struct Inbound(pub moq_net::origin::Producer);

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbound")
    }
}

/// Publish until the video source ends, `frames` are sent, or `cancel` fires. On a stop the
/// broadcast is finished cleanly (subscribers see its end) and the summary returned.
pub async fn publish(
    options: Options,
    video: Box<dyn source::Source>,
    audio: Option<Box<dyn audio::AudioSource>>,
    cancel: CancellationToken,
    events: Events,
) -> Result<Summary, Error> {
    if options.name.is_empty() {
        return Err(Error::Config("--name must not be empty".into()));
    }
    if matches!(options.target, Target::RtpOnly) && options.rtp.is_none() {
        return Err(Error::Config(
            "nowhere to publish: give a relay (--url), --listen, or --rtp".into(),
        ));
    }
    let recorder = match &options.record {
        Some(_) if matches!(options.target, Target::RtpOnly) => {
            return Err(Error::Config(
                "--record records the MoQ broadcast: not with --rtp alone (add --listen)".into(),
            ));
        }
        Some(path) => Some(lantern_net::record::Recorder::create(path).await?),
        None => None,
    };
    let audio = match audio {
        Some(source) => Some((source, audio::OpusEncoder::new(options.audio)?)),
        None => None,
    };
    let format = video.format();
    let mut settings = options.video.settings(format)?;
    if options.rtp.is_some() && settings.codec() != encode::Codec::H264 {
        return Err(Error::Config(format!(
            "--rtp carries H.264 only: this FFmpeg (5.1) has no RTP packetizer for {} \
             (publish {0} to a relay or with --listen, or use --codec h264)",
            settings.codec().name()
        )));
    }
    if options.rtp.is_some() {
        // Each slice whole in one RTP packet: receivers can decode as packets land.
        settings.slice_max_bytes = Some(rtp::PAYLOAD_BYTES);
    }
    let control = options
        .rate
        .config(
            &settings,
            encode::VideoSettings::default_bitrate_kbps(format),
        )
        .map(lantern_proto::rate::RateControl::new);
    // Viewers whose feedback is followed ask for a keyframe when they need one; an RTP
    // receiver cannot.
    if control.is_some()
        && options.feedback.is_some()
        && options.rtp.is_none()
        && options.video.gop.is_none()
    {
        settings.gop = encode::VideoSettings::gop_of(format, encode::ON_DEMAND_GOP_S);
    }
    let feedback = options.feedback.clone().unwrap_or_default();
    let (video_rtp, audio_rtp) = match &options.rtp {
        Some(url) => open_rtp(url, &options.name, format, audio.is_some(), &events)?,
        None => (None, None),
    };

    let origin = match &options.target {
        Target::Origin(origin) => origin.clone(),
        _ => moq_tokio::origin::spawn(),
    };
    let (mut broadcast, video_track, audio_track) = match &options.target {
        Target::RtpOnly => (None, None, None),
        _ => {
            let (broadcast, video, audio) = publish::Broadcast::new(
                &origin,
                &options.name,
                format,
                &settings,
                audio.as_ref().map(|(_, encoder)| encoder.head()),
            )?;
            (Some(broadcast), Some(video), audio)
        }
    };
    let video_track = outlet::Outlet {
        moq: video_track,
        rtp: video_rtp,
    };
    let audio_track = audio.is_some().then_some(outlet::Outlet {
        moq: audio_track,
        rtp: audio_rtp,
    });
    let mut network = tokio::select! {
        network = Network::start(&options, &origin, &events, &feedback) => network?,
        () = cancel.cancelled() => return Ok(Summary::default()),
    };
    tracing::info!(
        name = options.name,
        width = format.width,
        height = format.height,
        fps = format.fps,
        codec = settings.codec().name(),
        encoder = settings.backend.name(),
        kbps = settings.bitrate_kbps,
        adaptive = control.is_some(),
        gop = settings.gop,
        "publishing"
    );

    // One token for this run's threads: the caller's stop, or a failure here, ends them all.
    let stop = cancel.child_token();
    // The recorder reads the broadcast as any subscriber would, until it is finished.
    let recording = recorder.map(|recorder| {
        let selection = lantern_net::record::Selection::default();
        recorder.start(origin.consume(), options.name.clone(), selection)
    });
    let audio = audio.zip(audio_track).map(|((source, encoder), track)| {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let result = audio::run(source, encoder, track, stop.clone());
            // Never stream on silently without the sound that was asked for.
            stop.cancel();
            result
        })
    });
    let pipeline = {
        let (stop, events) = (stop.clone(), events.clone());
        let options = pipeline::Options {
            frames: options.frames,
            stamp: options.stamp,
            rate: control.map(|control| (control, feedback)),
        };
        tokio::task::spawn_blocking(move || {
            pipeline::run(video, &settings, video_track, options, stop, events)
        })
    };
    let (video, failure) = network.watch(pipeline, &stop).await;
    stop.cancel();
    let audio = match audio {
        Some(audio) => Some(audio.await.map_err(|_| Error::Thread("audio"))?),
        None => None,
    };
    let finished = broadcast
        .as_mut()
        .map_or(Ok(()), publish::Broadcast::finish);
    let record = match recording {
        Some(recording) => Some(recording.stop().await.map_err(Error::from)),
        None => None,
    };
    network.close().await;
    if let Some(failure) = failure {
        return Err(failure);
    }
    let summary = Summary {
        video: video?,
        audio: audio.transpose()?,
        record: record.transpose()?,
    };
    finished?;
    tracing::debug!(?summary, "done");
    Ok(summary)
}

/// Open the RTP streams (video, and sound when `with_audio`) to `url` and report their SDP.
fn open_rtp(
    url: &rtp::RtpUrl,
    name: &str,
    format: source::Format,
    with_audio: bool,
    events: &Events,
) -> Result<(Option<rtp::Stream>, Option<rtp::Stream>), Error> {
    // RTP timestamp zero a little in the past, so frames captured while setting up count up
    // from it too.
    // Whole milliseconds: the muxer keeps only those of it for its RTCP reports.
    let epoch_us = lantern_proto::clock::now_unix_us().saturating_sub(1_000_000) / 1000 * 1000;
    let mut video = rtp::Stream::open(url, rtp::Media::Video(format), epoch_us, name)?;
    let mut audio = match with_audio {
        true => Some(rtp::Stream::open(
            url,
            rtp::Media::Opus(audio::CHANNELS as u16),
            epoch_us,
            name,
        )?),
        false => None,
    };
    let sdp = match &mut audio {
        Some(audio) => rtp::sdp(&mut [&mut video, audio])?,
        None => rtp::sdp(&mut [&mut video])?,
    };
    let _ = events.send(Event::Rtp {
        url: url.to_string(),
        sdp,
    });
    Ok((Some(video), audio))
}

/// Keep `feedback` told of the connection's own estimate of its path (a few times a second).
async fn sample_send_bandwidth(estimate: moq_net::bandwidth::Consumer, feedback: rate::Feedback) {
    let mut every = tokio::time::interval(Duration::from_millis(200));
    loop {
        every.tick().await;
        feedback.send_estimate(estimate.peek().map(|r| r.as_bps()));
    }
}

/// The network side of a run: a relay connection or a direct server.
enum Network {
    /// The connection, its URL (redacted), and the task sampling its bandwidth estimate.
    Relay(moq_tokio::Connection, String, tokio::task::JoinHandle<()>),
    Listen(tokio::task::JoinHandle<Result<(), lantern_net::Error>>),
    /// In-process, or RTP only: nothing to watch.
    Origin,
}

impl Network {
    async fn start(
        options: &Options,
        origin: &moq_net::origin::Producer,
        events: &Events,
        feedback: &rate::Feedback,
    ) -> Result<Self, Error> {
        Ok(match &options.target {
            Target::Relay(args) => {
                // A relay going away never ends the stream: redial for as long as it takes
                // (unless --give-up says otherwise), republishing when it is back.
                let (client, relays) = args.client(args.give_up(None)?)?;
                let client = client.with_publisher(origin.consume());
                let client = match &options.inbound {
                    Some(inbound) => client.with_subscriber(inbound.0.clone()),
                    None => client,
                };
                let dialing = client.connect(relays.addrs());
                let connection =
                    lantern_net::established(dialing, &relays, args.timeout()?).await?;
                let url = relays.to_string();
                let _ = events.send(Event::Connected { url: url.clone() });
                let sampler = tokio::spawn(sample_send_bandwidth(
                    connection.send_bandwidth(),
                    feedback.clone(),
                ));
                Self::Relay(connection, url, sampler)
            }
            Target::Listen(serve) => {
                let listener = lantern_net::Listener::bind(serve).await?;
                let _ = events.send(Event::Listening {
                    addr: listener.local_addr(),
                    fingerprint: listener.fingerprint().to_string(),
                    page: listener.page(&options.name),
                });
                Self::Listen(tokio::spawn(
                    listener.serve(origin.consume(), options.inbound.clone().map(|i| i.0)),
                ))
            }
            Target::Origin(_) | Target::RtpOnly => Self::Origin,
        })
    }

    /// Wait for the pipeline to end, stopping it (through `stop`) if the network fails first;
    /// returns its result, and the network's failure if there was one.
    async fn watch(
        &mut self,
        pipeline: tokio::task::JoinHandle<Result<stats::VideoSummary, Error>>,
        stop: &CancellationToken,
    ) -> (Result<stats::VideoSummary, Error>, Option<Error>) {
        let joined = |done: Result<_, tokio::task::JoinError>| {
            done.unwrap_or(Err(Error::Thread("video pipeline")))
        };
        tokio::pin!(pipeline);
        let failure = tokio::select! {
            done = &mut pipeline => return (joined(done), None),
            failure = self.failed() => failure,
        };
        stop.cancel();
        (joined(pipeline.await), Some(failure))
    }

    /// Resolves only when the network has failed for good: the relay connection gave up
    /// reconnecting, or the direct server stopped. Drops and returns are logged.
    async fn failed(&mut self) -> Error {
        match self {
            Self::Relay(connection, url, _) => loop {
                match connection.status().await {
                    Ok(moq_tokio::connection::Status::Disconnected) => {
                        tracing::warn!(url = %url, "lost the relay: redialing, the stream goes on");
                    }
                    Ok(moq_tokio::connection::Status::Connected) if connection.epoch() > 1 => {
                        tracing::info!(url = %url, "back on the relay: publishing again");
                    }
                    Ok(_) => {}
                    Err(source) => {
                        break Error::Net(lantern_net::Error::Connect {
                            url: url.clone(),
                            source,
                        });
                    }
                }
            },
            Self::Listen(server) => match server.await {
                Ok(Err(err)) => Error::Net(err),
                Ok(Ok(())) | Err(_) => Error::Thread("direct server"),
            },
            Self::Origin => std::future::pending().await,
        }
    }

    /// Deliver what is still queued, but never wait long for a dead peer.
    async fn close(self) {
        match self {
            Self::Relay(connection, _, sampler) => {
                sampler.abort();
                let _ = tokio::time::timeout(Duration::from_secs(2), connection.close()).await;
            }
            Self::Listen(server) => server.abort(),
            Self::Origin => {}
        }
    }
}
