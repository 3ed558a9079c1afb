//! A publishing run: check the options, open the encoders and the broadcast (and the RTP copy
//! and the recording), go on the network, and run the audio thread and the video pipeline
//! until the source ends, the frames are sent, or a stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::publish::Broadcast;
use crate::stats::{Event, Summary};
use crate::{
    Error, Events, Options, Target, audio, encode, outlet, pipeline, rate, rtp, source, stats,
};

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
            options.feedback.is_some(),
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
            let (broadcast, video, audio) = Broadcast::new(
                &origin,
                &options.name,
                format,
                &settings,
                audio.as_ref().map(|(_, encoder)| encoder.head()),
            )?;
            (Some(broadcast), Some(video), audio)
        }
    };
    let video_track = outlet::Outlet::new(video_track, video_rtp);
    let audio_track = audio
        .is_some()
        .then(|| outlet::Outlet::new(audio_track, audio_rtp));
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
            seats: match &network {
                Network::Listen(_, seats) => Some(seats.clone()),
                _ => None,
            },
            rejoined: match &network {
                Network::Relay(link) => link.rejoined.clone(),
                _ => Arc::default(),
            },
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
    let finished = broadcast.as_mut().map_or(Ok(()), Broadcast::finish);
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
    Relay(Box<RelayLink>),
    /// The direct server, and who it holds.
    Listen(
        tokio::task::JoinHandle<Result<(), lantern_net::Error>>,
        lantern_net::listen::Seats,
    ),
    /// In-process, or RTP only: nothing to watch.
    Origin,
}

/// A relay connection: the client that dialed it (to send its close, and to dial afresh), its
/// URL (redacted), the task sampling its bandwidth estimate, and what finds its relay
/// restarted under it.
struct RelayLink {
    connection: moq_tokio::Connection,
    client: moq_tokio::Client,
    url: String,
    sampler: tokio::task::JoinHandle<()>,
    feedback: rate::Feedback,
    redial: lantern_net::Redial,
    /// Told when the relay takes the broadcast again (see [`pipeline::Options::rejoined`]).
    rejoined: Arc<AtomicBool>,
}

impl RelayLink {
    /// Publish on over a fresh connection when the relay restarted under this one, rather
    /// than wait out the idle timeout (see [`lantern_net::Redial`]).
    async fn redial_if_restarted(&mut self) {
        let Some(fresh) = self.redial.check(&self.connection).await else {
            return;
        };
        tracing::warn!(
            url = self.url,
            silent_s = fresh.silent.as_secs_f64(),
            "the relay stopped answering and a fresh dial was answered (it restarted, or a \
             fallback took over): publishing again over that"
        );
        self.connection.abort(moq_net::Error::Timeout);
        self.connection = fresh.connection;
        self.rejoined.store(true, Ordering::Relaxed);
        self.sampler.abort();
        self.sampler = tokio::spawn(sample_send_bandwidth(
            self.connection.send_bandwidth(),
            self.feedback.clone(),
        ));
    }
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
                let deaf_after = args.deaf_after(&relays)?;
                let redial = lantern_net::Redial::new(client.clone(), relays, deaf_after);
                Self::Relay(Box::new(RelayLink {
                    connection,
                    client,
                    url,
                    sampler,
                    feedback: feedback.clone(),
                    redial,
                    rejoined: Arc::default(),
                }))
            }
            Target::Listen(serve) => {
                let listener = lantern_net::Listener::bind(serve).await?;
                let _ = events.send(Event::Listening {
                    addr: listener.local_addr(),
                    fingerprint: listener.fingerprint().to_string(),
                    page: listener.page(&options.name),
                });
                let seats = listener.seats();
                let server = tokio::spawn(listener.serve(
                    origin.consume(),
                    options.inbound.clone().map(|i| i.0),
                    options.players.clone(),
                ));
                Self::Listen(server, seats)
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
            Self::Relay(link) => {
                let mut every = tokio::time::interval(lantern_net::Redial::EVERY);
                loop {
                    let status = tokio::select! {
                        status = link.connection.status() => status,
                        _ = every.tick() => {
                            link.redial_if_restarted().await;
                            continue;
                        }
                    };
                    let url = &link.url;
                    match status {
                        Ok(moq_tokio::connection::Status::Disconnected) => {
                            tracing::warn!(url, "lost the relay: redialing, the stream goes on");
                        }
                        Ok(moq_tokio::connection::Status::Connected)
                            if link.connection.epoch() > 1 =>
                        {
                            tracing::info!(url, "back on the relay: publishing again");
                            link.rejoined.store(true, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(source) => {
                            break Error::Net(lantern_net::Error::Connect {
                                url: url.clone(),
                                source,
                            });
                        }
                    }
                }
            }
            Self::Listen(server, _) => match server.await {
                Ok(Err(err)) => Error::Net(err),
                Ok(Ok(())) | Err(_) => Error::Thread("direct server"),
            },
            Self::Origin => std::future::pending().await,
        }
    }

    /// Deliver what is still queued, but never wait long for a dead peer.
    async fn close(self) {
        match self {
            Self::Relay(link) => {
                let RelayLink {
                    connection,
                    client,
                    sampler,
                    ..
                } = *link;
                sampler.abort();
                lantern_net::close(Some(connection), client, Duration::from_secs(2)).await;
            }
            Self::Listen(server, _) => server.abort(),
            Self::Origin => {}
        }
    }
}
