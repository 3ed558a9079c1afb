//! What a session asks for, as the control API's JSON, as `host-daemon ctl create`'s flags, and
//! as the `[session]` defaults of the daemon's TOML config: one struct, every field optional,
//! the request's fields winning over the config's and the config's over Lantern's defaults.
//! `host-daemon run` builds its session from the same struct (its flags filled in), so both
//! doors have the same defaults and the same features; run alone adds the RTP copy and the
//! recording (a served session would have to hand its SDP out, and a root daemon would write
//! where a request says).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lantern_net::ConnectArgs;
use moq_pub::Target;
use moq_pub::audio::AudioArgs;
use moq_pub::encode::VideoArgs;
use moq_pub::rate::RateArgs;
use moq_pub::source::Format;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::capture::Capture;
use crate::compositor;
use crate::session::Config;

/// A session's settings. Unset fields take the daemon config's `[session]` value, then
/// Lantern's default (1280x720 at 60, sway, sound on, XWayland on).
#[derive(clap::Args, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Output width (the stream's) [default: 1280].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,

    /// Output height [default: 720].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,

    /// Output refresh rate, the most the stream carries [default: 60].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,

    /// Serve viewers directly on this address instead of publishing to a relay.
    #[arg(long, conflicts_with = "url")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,

    /// With `listen`: serve with this certificate chain (PEM on the host, e.g. from an ACME
    /// client) instead of a generated one, and the browser viewer over HTTPS, so players on
    /// other machines can open it by the certificate's host name.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of `tls_cert` (PEM on the host).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,

    /// The relay (`https://HOST/PATH`); the broadcast goes under PATH with the session's name.
    /// Several, separated by commas, for fallbacks (a cluster's other relays).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// The relay's JWT.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,

    /// Trust a relay whose certificate has this SHA-256 fingerprint (hex).
    #[arg(long, value_name = "HEX")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_fingerprint: Vec<String>,

    /// Also trust certificates signed by this CA (PEM file on the host).
    #[arg(long, value_name = "PEM")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_root: Vec<PathBuf>,

    /// Where the picture comes from: `compositor` (its output; `compositor:shm` or
    /// `compositor:dmabuf` to choose the buffers, else DMA-BUF where possible) or
    /// `pipewire:NODE` (a PipeWire video node of the session, by name or serial).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,

    /// The compositor: auto (gamescope where it can run, else lantern), lantern, sway or
    /// gamescope.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compositor: Option<compositor::Kind>,

    /// The account the session runs as (root daemons only), never one a running session has
    /// [default: a free one of the daemon's `users` (lantern-1 …), else lantern].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,

    /// Start XWayland for X11 apps [default: true].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xwayland: Option<bool>,

    /// Draw the pointer into the picture (a compositor capture) [default: false: viewers
    /// draw their own].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<bool>,

    /// Stream the app's sound [default: true].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<bool>,

    /// Opus bitrate in kbit/s [default: 128].
    #[arg(long, value_name = "KBPS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_bitrate: Option<u32>,

    /// Video bitrate in kbit/s [default: 0.08 bit per pixel per frame].
    #[arg(long, value_name = "KBPS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u32>,

    /// Video codec: h264 or av1 [default: h264].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<moq_pub::encode::Codec>,

    /// Encoder: auto (for h264 NVENC or VAAPI where the host has a GPU for it, else x264; for
    /// av1 libaom, or SVT-AV1 with a preset), x264, nvenc, vaapi, aom or svtav1 [default:
    /// auto].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder: Option<moq_pub::encode::EncoderChoice>,

    /// The GPU render node VAAPI encodes on [default: the first /dev/dri/renderD* that
    /// opens].
    #[arg(long, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vaapi_device: Option<PathBuf>,

    /// Frames between keyframes [default: one second; two when the bitrate follows the
    /// players, who ask for keyframes when they need one].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gop: Option<u32>,

    /// Encoder preset (x264's names, NVENC's p1 … p7, SVT-AV1's numbers, libaom's speed)
    /// [default: the encoder's fastest real-time one].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,

    /// x264 tune [default: zerolatency].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tune: Option<String>,

    /// adaptive (follow the players' feedback and the path) or fixed [default: adaptive].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitrate_mode: Option<moq_pub::rate::Mode>,

    /// The most an adaptive bitrate may reach, kbit/s [default: three times the default for
    /// the size].
    #[arg(long, value_name = "KBPS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bitrate: Option<u32>,

    /// The least an adaptive bitrate may fall to, kbit/s [default: 200].
    #[arg(long, value_name = "KBPS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_bitrate: Option<u32>,

    /// Opus frame length in ms: 2.5, 5, 10 or 20 [default: 10].
    #[arg(long, value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_frame_ms: Option<f64>,

    /// Trust a relay's certificate fingerprint fetched over plain HTTP from another machine
    /// (anyone on the path can replace it: prefer `tls_fingerprint`) [default: false].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_http_fingerprint: Option<bool>,

    /// Skip TLS verification of the relay entirely: anyone on the path can then read and
    /// alter the stream. Only for debugging [default: false].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_insecure: Option<bool>,

    /// Fall back to WebSocket over TCP where QUIC cannot reach an `https://` relay; through
    /// moq-relay the players' input (datagrams) does not arrive over it [default: false].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket_fallback: Option<bool>,

    /// Offer only these MoQ protocol versions (e.g. `moq-lite-03`) [default: every one].
    #[arg(long, value_name = "VERSION")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moq_version: Vec<String>,

    /// Seconds without hearing from the relay before the path is declared dead and redialed
    /// [default: 6 with one relay, 1.2 with fallbacks].
    #[arg(long, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<f64>,

    /// Seconds to keep redialing a relay that went away, 0 for ever [default: for ever].
    #[arg(long, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub give_up: Option<f64>,

    /// With `listen`: the built browser viewer to serve (a folder holding index.html)
    /// [default: the installed one, if any].
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<PathBuf>,

    /// With `listen`: QUIC sessions held at once (players, spectators, whatever connects);
    /// beyond them a new one takes the place of one idle for 10 s, or is refused until one
    /// ends [default: 1024].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=lantern_net::listen::MAX_SESSIONS_CAP))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,

    /// With `listen`: viewers watching without a grant (spectators) at once; beyond them a
    /// new one takes the place of one idle for 10 s, or is refused until one leaves; players
    /// with a grant never wait for one. 0: players only [default: 8].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=lantern_net::listen::MAX_SESSIONS_CAP))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_spectators: Option<u32>,

    /// `run` only: also send the stream as plain RTP here.
    #[arg(skip)]
    #[serde(skip)]
    pub rtp: Option<moq_pub::rtp::RtpUrl>,

    /// `run` only: record the stream at the host into this file.
    #[arg(skip)]
    #[serde(skip)]
    pub record: Option<PathBuf>,

    /// Draw the latency stamp into the pictures (test content only) [default: false].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stamp: Option<bool>,

    /// Whose input is injected: `granted` (viewers with a grant from `ctl grant`), `open`
    /// (any viewer: trusted networks only) or `off` [default: granted].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<crate::input::Auth>,

    /// Seconds to wait for the relay, and for each start-up step (the compositor and the
    /// sound take at least 10) [default: 10].
    #[arg(long, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
}

/// `POST /sessions`: a named session running an app.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Create {
    /// The broadcast's name, unique among the daemon's sessions.
    pub name: String,
    /// The app and its arguments.
    pub app: Vec<String>,
    /// Extra environment for the app.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(flatten)]
    pub spec: Spec,
    /// Anything else: refused by name rather than ignored.
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

impl Spec {
    /// These settings, with `defaults` where they have none.
    pub fn or(self, defaults: &Spec) -> Spec {
        let d = defaults.clone();
        Spec {
            width: self.width.or(d.width),
            height: self.height.or(d.height),
            fps: self.fps.or(d.fps),
            // A session asking for a relay does not inherit a default direct address.
            listen: if self.url.is_some() {
                self.listen
            } else {
                self.listen.or(d.listen)
            },
            tls_cert: self.tls_cert.or(d.tls_cert),
            tls_key: self.tls_key.or(d.tls_key),
            max_sessions: self.max_sessions.or(d.max_sessions),
            max_spectators: self.max_spectators.or(d.max_spectators),
            url: if self.listen.is_some() {
                self.url
            } else {
                self.url.or(d.url)
            },
            token: self.token.or(d.token),
            tls_fingerprint: list(self.tls_fingerprint, d.tls_fingerprint),
            tls_root: list(self.tls_root, d.tls_root),
            capture: self.capture.or(d.capture),
            compositor: self.compositor.or(d.compositor),
            user: self.user.or(d.user),
            xwayland: self.xwayland.or(d.xwayland),
            cursor: self.cursor.or(d.cursor),
            audio: self.audio.or(d.audio),
            audio_bitrate: self.audio_bitrate.or(d.audio_bitrate),
            bitrate: self.bitrate.or(d.bitrate),
            codec: self.codec.or(d.codec),
            encoder: self.encoder.or(d.encoder),
            vaapi_device: self.vaapi_device.or(d.vaapi_device),
            gop: self.gop.or(d.gop),
            preset: self.preset.or(d.preset),
            tune: self.tune.or(d.tune),
            bitrate_mode: self.bitrate_mode.or(d.bitrate_mode),
            max_bitrate: self.max_bitrate.or(d.max_bitrate),
            min_bitrate: self.min_bitrate.or(d.min_bitrate),
            audio_frame_ms: self.audio_frame_ms.or(d.audio_frame_ms),
            trust_http_fingerprint: self.trust_http_fingerprint.or(d.trust_http_fingerprint),
            tls_insecure: self.tls_insecure.or(d.tls_insecure),
            websocket_fallback: self.websocket_fallback.or(d.websocket_fallback),
            moq_version: list(self.moq_version, d.moq_version),
            idle_timeout: self.idle_timeout.or(d.idle_timeout),
            give_up: self.give_up.or(d.give_up),
            web: self.web.or(d.web),
            rtp: self.rtp.or(d.rtp),
            record: self.record.or(d.record),
            stamp: self.stamp.or(d.stamp),
            input: self.input.or(d.input),
            timeout: self.timeout.or(d.timeout),
        }
    }
}

/// A list setting: the request's if it gives any, else the defaults'.
fn list<T>(mine: Vec<T>, theirs: Vec<T>) -> Vec<T> {
    if mine.is_empty() { theirs } else { mine }
}

impl Create {
    /// The session's configuration, `defaults` filling what the request leaves out.
    pub fn config(self, defaults: &Spec) -> Result<Config, Error> {
        if let Some(key) = self.unknown.keys().next() {
            return Err(Error::Config(format!("unknown setting {key:?}")));
        }
        if self.name.is_empty() || self.name.len() > 128 || self.name.contains('/') {
            return Err(Error::Config(format!(
                "session name {:?}: 1 to 128 characters, no '/'",
                self.name
            )));
        }
        if self.app.first().is_none_or(|program| program.is_empty()) {
            return Err(Error::Config(
                "no app to run: give \"app\": [PROGRAM, ARGS…]".into(),
            ));
        }
        let spec = self.spec.or(defaults);
        let timeout = spec.timeout.unwrap_or(10.0);
        if !(timeout.is_finite() && (1.0..=600.0).contains(&timeout)) {
            return Err(Error::Config(format!(
                "timeout {timeout}: 1 to 600 seconds"
            )));
        }
        let tls = match (spec.tls_cert, spec.tls_key) {
            (Some(cert), Some(key)) if spec.listen.is_some() => {
                Some(lantern_net::listen::ServerTls { cert, key })
            }
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "\"tls_cert\" and \"tls_key\" are for a session that listens: give \"listen\" too"
                        .into(),
                ));
            }
            _ => {
                return Err(Error::Config(
                    "\"tls_cert\" and \"tls_key\" go together: give both, or neither".into(),
                ));
            }
        };
        if let Some(n) = spec.max_sessions
            && !(1..=lantern_net::listen::MAX_SESSIONS_CAP).contains(&i64::from(n))
        {
            let cap = lantern_net::listen::MAX_SESSIONS_CAP;
            return Err(Error::Config(format!("max_sessions {n}: 1 to {cap}")));
        }
        if let Some(n) = spec.max_spectators
            && i64::from(n) > lantern_net::listen::MAX_SESSIONS_CAP
        {
            let cap = lantern_net::listen::MAX_SESSIONS_CAP;
            return Err(Error::Config(format!("max_spectators {n}: 0 to {cap}")));
        }
        let target = match (spec.listen, spec.url) {
            (Some(addr), _) => Target::Listen(lantern_net::listen::Serve {
                addr,
                tls,
                web: spec.web.or_else(lantern_net::web::installed),
                max_sessions: spec
                    .max_sessions
                    .map_or(lantern_net::listen::MAX_SESSIONS, |n| n as usize),
                max_spectators: spec
                    .max_spectators
                    .map_or(lantern_net::listen::MAX_SPECTATORS, |n| n as usize),
            }),
            (None, Some(url)) => Target::Relay(ConnectArgs {
                url: url
                    .split(',')
                    .map(|one| {
                        one.trim().parse().map_err(|err| {
                            let shown = one.split('?').next().unwrap_or_default();
                            Error::Config(format!("url {shown:?}: {err}"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                token: spec.token,
                tls_fingerprint: spec.tls_fingerprint,
                tls_root: spec.tls_root,
                trust_http_fingerprint: spec.trust_http_fingerprint.unwrap_or(false),
                tls_insecure: spec.tls_insecure.unwrap_or(false),
                websocket_fallback: spec.websocket_fallback.unwrap_or(false),
                moq_version: spec.moq_version,
                timeout,
                idle_timeout: spec.idle_timeout,
                give_up: spec.give_up,
                grant: None,
            }),
            // `run` may send RTP alone.
            (None, None) if spec.rtp.is_some() => Target::RtpOnly,
            (None, None) => {
                return Err(Error::Config(
                    "nowhere to stream: give \"url\" (a relay) or \"listen\" (an address), \
                     or set one under [session] in the daemon's config"
                        .into(),
                ));
            }
        };
        let audio = spec
            .audio
            .unwrap_or(true)
            .then(|| {
                let defaults = AudioArgs::default();
                AudioArgs {
                    bitrate_kbps: spec.audio_bitrate.unwrap_or(defaults.bitrate_kbps),
                    frame_ms: spec.audio_frame_ms.unwrap_or(defaults.frame_ms),
                }
                .settings()
            })
            .transpose()?;
        let (video, rate) = (VideoArgs::default(), RateArgs::default());
        let name = self.name;
        Ok(Config {
            name: name.clone(),
            app: self.app,
            app_env: self.env.into_iter().collect(),
            format: Format {
                width: spec.width.unwrap_or(1280),
                height: spec.height.unwrap_or(720),
                fps: spec.fps.unwrap_or(60.0),
            },
            target,
            rtp: spec.rtp,
            record: spec.record,
            video: VideoArgs {
                codec: spec.codec.unwrap_or(video.codec),
                encoder: spec.encoder.unwrap_or(video.encoder),
                bitrate: spec.bitrate,
                gop: spec.gop,
                preset: spec.preset,
                tune: spec.tune.unwrap_or(video.tune),
                vaapi_device: spec.vaapi_device,
            },
            rate: RateArgs {
                bitrate_mode: spec.bitrate_mode.unwrap_or(rate.bitrate_mode),
                max_bitrate: spec.max_bitrate,
                min_bitrate: spec.min_bitrate.unwrap_or(rate.min_bitrate),
            },
            audio,
            capture: spec.capture.unwrap_or_default(),
            user: spec.user,
            // The daemon sets it when it gives the session an account of its own.
            own_user: false,
            compositor: spec.compositor.unwrap_or_default(),
            xwayland: spec.xwayland.unwrap_or(true),
            cursor: spec.cursor.unwrap_or(false),
            stamp: spec.stamp.unwrap_or(false),
            // The compositor and the sound get their 10 s even when the relay's wait is shorter.
            timeout: Duration::from_secs_f64(timeout.max(10.0)),
            input: crate::input::Settings {
                auth: spec.input.unwrap_or_default(),
                grants: std::sync::Arc::new(lantern_net::grant::Grants::generate(&name)),
                pads_for: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(json: serde_json::Value) -> Create {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_request_wins_over_the_defaults_and_the_defaults_over_lanterns() {
        let defaults = Spec {
            width: Some(1920),
            height: Some(1080),
            url: Some("https://relay.example/anon".into()),
            token: Some("secret".into()),
            ..Spec::default()
        };
        let config = create(serde_json::json!({
            "name": "a", "app": ["foot"], "height": 720, "env": {"K": "V"}
        }))
        .config(&defaults)
        .unwrap();
        assert_eq!((config.format.width, config.format.height), (1920, 720));
        assert_eq!(config.format.fps, 60.0);
        assert_eq!(config.app_env, vec![("K".to_string(), "V".to_string())]);
        let Target::Relay(connect) = config.target else {
            panic!("not a relay target");
        };
        assert_eq!(connect.token.as_deref(), Some("secret"));
        assert!(config.audio.is_some() && config.xwayland && !config.stamp);
    }

    #[test]
    fn a_session_that_listens_does_not_inherit_the_relay() {
        let defaults = Spec {
            url: Some("https://relay.example/anon".into()),
            ..Spec::default()
        };
        let config = create(serde_json::json!({
            "name": "a", "app": ["foot"], "listen": "127.0.0.1:4443"
        }))
        .config(&defaults)
        .unwrap();
        assert!(matches!(config.target, Target::Listen(_)));
    }

    #[test]
    fn a_session_that_listens_serves_with_the_operators_certificate() {
        let defaults = Spec {
            tls_cert: Some("/etc/lantern/tls/cert.pem".into()),
            tls_key: Some("/etc/lantern/tls/key.pem".into()),
            ..Spec::default()
        };
        let config = create(serde_json::json!({
            "name": "a", "app": ["foot"], "listen": "0.0.0.0:4443"
        }))
        .config(&defaults)
        .unwrap();
        let Target::Listen(serve) = config.target else {
            panic!("not a direct server");
        };
        let tls = serve.tls.expect("the operator's certificate");
        assert_eq!(tls.key, std::path::Path::new("/etc/lantern/tls/key.pem"));
        for (json, says) in [
            (
                serde_json::json!({"name": "a", "app": ["x"], "url": "https://r/a", "tls_cert": "c", "tls_key": "k"}),
                "give \"listen\" too",
            ),
            (
                serde_json::json!({"name": "a", "app": ["x"], "listen": "127.0.0.1:1", "tls_cert": "c"}),
                "go together",
            ),
        ] {
            let err = create(json).config(&Spec::default()).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn a_session_that_listens_holds_as_many_sessions_as_asked() {
        let listening = |extra: serde_json::Value| {
            let mut json = serde_json::json!({"name": "a", "app": ["x"], "listen": "127.0.0.1:1"});
            json.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            create(json).config(&Spec::default())
        };
        let Target::Listen(serve) = listening(serde_json::json!({})).unwrap().target else {
            panic!("not listening");
        };
        assert_eq!(serve.max_sessions, lantern_net::listen::MAX_SESSIONS);
        let asked = listening(serde_json::json!({"max_sessions": 8})).unwrap();
        assert!(matches!(asked.target, Target::Listen(serve) if serve.max_sessions == 8));
        for refused in [0, 70_000] {
            let err = listening(serde_json::json!({ "max_sessions": refused })).unwrap_err();
            assert!(err.to_string().contains("max_sessions"), "{err}");
        }
        assert_eq!(serve.max_spectators, lantern_net::listen::MAX_SPECTATORS);
        let players_only = listening(serde_json::json!({"max_spectators": 0})).unwrap();
        assert!(matches!(players_only.target, Target::Listen(serve) if serve.max_spectators == 0));
        let err = listening(serde_json::json!({ "max_spectators": 70_000 })).unwrap_err();
        assert!(err.to_string().contains("max_spectators"), "{err}");
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let cases = [
            (
                serde_json::json!({"name": "a", "app": ["x"], "widht": 3}),
                "widht",
            ),
            (
                serde_json::json!({"name": "", "app": ["x"], "listen": "127.0.0.1:1"}),
                "name",
            ),
            (
                serde_json::json!({"name": "a/b", "app": ["x"], "listen": "127.0.0.1:1"}),
                "name",
            ),
            (
                serde_json::json!({"name": "a", "app": [], "listen": "127.0.0.1:1"}),
                "no app",
            ),
            (serde_json::json!({"name": "a", "app": ["x"]}), "nowhere"),
            (
                serde_json::json!({"name": "a", "app": ["x"], "url": "not a url"}),
                "url",
            ),
            (
                serde_json::json!({"name": "a", "app": ["x"], "listen": "127.0.0.1:1", "timeout": 0}),
                "timeout",
            ),
            // What only `run` may ask for is refused by name from a request.
            (
                serde_json::json!({"name": "a", "app": ["x"], "listen": "127.0.0.1:1", "record": "/etc/shadow"}),
                "record",
            ),
            (
                serde_json::json!({"name": "a", "app": ["x"], "rtp": "rtp://127.0.0.1:5004"}),
                "rtp",
            ),
        ];
        for (json, needle) in cases {
            let err = create(json.clone()).config(&Spec::default()).unwrap_err();
            assert!(err.to_string().contains(needle), "{json}: {err}");
        }
    }

    /// Every publishing setting a session can have reaches it, from a request as from `run`
    /// (one builder: the two doors cannot drift apart).
    #[test]
    fn every_publishing_setting_reaches_the_session() {
        let config = create(serde_json::json!({
            "name": "a", "app": ["foot"], "url": "https://r.example/a,https://s.example/a",
            "encoder": "x264", "gop": 30, "preset": "veryfast", "tune": "film",
            "bitrate_mode": "fixed", "max_bitrate": 9000, "min_bitrate": 300,
            "audio_frame_ms": 20.0, "audio_bitrate": 64, "idle_timeout": 3.0, "give_up": 60.0,
            "moq_version": ["moq-lite-03"], "trust_http_fingerprint": true, "timeout": 5.0,
            "websocket_fallback": true,
        }))
        .config(&Spec::default())
        .unwrap();
        let video = &config.video;
        assert_eq!(video.encoder, moq_pub::encode::EncoderChoice::X264);
        assert_eq!(
            (video.gop, video.preset.as_deref()),
            (Some(30), Some("veryfast"))
        );
        assert_eq!(video.tune, "film");
        assert_eq!(config.rate.bitrate_mode, moq_pub::rate::Mode::Fixed);
        assert_eq!(
            (config.rate.max_bitrate, config.rate.min_bitrate),
            (Some(9000), 300)
        );
        let audio = config.audio.unwrap();
        let expected = AudioArgs {
            frame_ms: 20.0,
            bitrate_kbps: 64,
        };
        assert_eq!(audio, expected.settings().unwrap());
        let Target::Relay(connect) = config.target else {
            panic!("not a relay target");
        };
        assert_eq!(connect.url.len(), 2);
        assert_eq!(
            (connect.idle_timeout, connect.give_up),
            (Some(3.0), Some(60.0))
        );
        assert_eq!(connect.moq_version, ["moq-lite-03"]);
        assert!(connect.trust_http_fingerprint && !connect.tls_insecure);
        assert!(connect.websocket_fallback);
        // The relay's wait is the request's; the start-up steps keep their 10 s.
        assert_eq!(connect.timeout, 5.0);
        assert_eq!(config.timeout, Duration::from_secs(10));
    }

    /// `run` with `--rtp` alone sends RTP alone; the same spec with a relay sends both.
    #[test]
    fn rtp_alone_is_a_target_of_its_own() {
        let rtp: moq_pub::rtp::RtpUrl = "rtp://127.0.0.1:5004".parse().unwrap();
        let spec = Spec {
            rtp: Some(rtp.clone()),
            ..Spec::default()
        };
        let run = |spec: Spec| Create {
            name: "a".into(),
            app: vec!["foot".into()],
            env: BTreeMap::new(),
            spec,
            unknown: BTreeMap::new(),
        };
        let config = run(spec.clone()).config(&Spec::default()).unwrap();
        assert!(matches!(config.target, Target::RtpOnly) && config.rtp.is_some());
        let with_relay = Spec {
            url: Some("https://r.example/a".into()),
            ..spec
        };
        let config = run(with_relay).config(&Spec::default()).unwrap();
        assert!(matches!(config.target, Target::Relay(_)) && config.rtp.is_some());
    }
}
