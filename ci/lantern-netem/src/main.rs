//! `lantern-netem`: put an emulated path between a client and a relay, or write a trace.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lantern_netem::{Capacity, LinkConfig, Proxy, Stats};

/// The most frames `floor` takes (each one's delay is kept, to sort): a day at 1000 fps.
const MAX_FLOOR_FRAMES: f64 = 86_400_000.0;

/// A userspace link emulator for QUIC paths (no root, no netem).
///
/// A link is written as key=value settings: rate=5mbit | rate=8mbit/10s,2mbit/10s |
/// rate=2mbit..8mbit/5s | rate=off/2s,5mbit/8s | rate=trace:FILE (mahimahi) | rate=walk:5mbit[/120s]
/// (a seeded LTE-like random walk); queue=256 (packets) | 64kb | 500ms (at the mean rate);
/// delay=20ms; jitter=5ms; loss=5% | ge:1%,30% (bursty); outage=10s+3s (repeatable);
/// seed=7. Rates, traces and walks repeat after their end, as mahimahi's traces do. Times
/// (outages, rate schedules) count from the first client packet, not from the proxy's start.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pass a client's UDP (QUIC) to a server through the links, and TCP on the same port
    /// unimpaired (the relay's /certificate.sha256, the page, /clock). One proxy per viewer
    /// gives each viewer its own path.
    Proxy {
        /// Where clients connect, e.g. 127.0.0.1:5443 (port 0 picks one and prints it).
        #[arg(long)]
        listen: SocketAddr,
        /// The server: a relay's or a --listen publisher's address, e.g. 127.0.0.1:4443.
        #[arg(long)]
        to: SocketAddr,
        /// Settings for both directions (a direction's own come after and win).
        #[arg(long, default_value = "")]
        link: String,
        /// Settings for server → client (what a viewer receives), e.g. "rate=5mbit queue=500ms delay=20ms".
        #[arg(long, default_value = "")]
        down: String,
        /// Settings for client → server.
        #[arg(long, default_value = "")]
        up: String,
        /// Do not pass TCP.
        #[arg(long)]
        no_tcp: bool,
        /// Print a JSON line of figures each second (see --every) on stdout instead of a human
        /// line on stderr.
        #[arg(long)]
        json: bool,
        /// Print the figures this often instead, seconds (0.05 to 3600): finer lines time a
        /// change on the link more closely (the counts in them are cumulative).
        #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
        every: f64,
        /// Stop after this many seconds (default: on Ctrl-C).
        #[arg(long, value_name = "SECONDS")]
        seconds: Option<f64>,
    },
    /// Write a capacity (as `rate=` takes it) as a mahimahi trace on stdout, one period.
    Trace {
        /// e.g. walk:5mbit/120s or 8mbit/10s,2mbit/10s,8mbit/10s.
        capacity: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The least frame delay any sender could reach over a capacity, by Salsify's metric
    /// (capture → that frame or a newer one delivered): every frame takes the first delivery
    /// opportunities after its capture, as if nothing else were queued. Prints p50/p95/p99/max
    /// in ms, to read a measured frame delay against what the path itself allows.
    Floor {
        /// As `rate=` takes it, e.g. trace:Verizon-LTE-short.down or walk:5mbit/60s.
        capacity: String,
        /// Where on the link's time the frames start, seconds (a viewer's stream starts a
        /// few seconds after its path; ci/bench's rows about 3 s).
        #[arg(long, default_value_t = 0.0)]
        from: f64,
        /// How many seconds of frames.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        #[arg(long, default_value_t = 60.0)]
        fps: f64,
        /// Each frame's size: one opportunity (1504) is the floor of floors.
        #[arg(long, default_value_t = lantern_netem::OPPORTUNITY_BYTES)]
        frame_bytes: u32,
        /// One-way delay added to each, ms.
        #[arg(long, default_value_t = 20.0)]
        delay_ms: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(err) = run(Cli::parse()).await {
        eprintln!("lantern-netem: {err:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Trace { capacity, seed } => {
            let trace = match Capacity::parse(&capacity, seed)? {
                Capacity::Trace(trace) => trace,
                _ => anyhow::bail!(
                    "{capacity:?} has no period to write: give segments (8mbit/10s,…) or walk:RATE"
                ),
            };
            print!("{}", trace.to_mahimahi());
            Ok(())
        }
        Command::Floor {
            capacity,
            from,
            seconds,
            fps,
            frame_bytes,
            delay_ms,
            seed,
        } => {
            let link = Capacity::parse(&capacity, seed)?;
            let us = |s: f64, what: &str| -> anyhow::Result<u64> {
                let micros = Duration::try_from_secs_f64(s)
                    .with_context(|| format!("{what} {s}"))?
                    .as_micros();
                u64::try_from(micros).with_context(|| format!("{what} {s}: too long"))
            };
            let from_us = us(from, "--from")?;
            let to_us = from_us
                .checked_add(us(seconds, "--seconds")?)
                .context("--from and --seconds: too long together")?;
            anyhow::ensure!(
                fps > 0.0 && fps.is_finite(),
                "--fps {fps}: not a frame rate"
            );
            anyhow::ensure!(
                seconds * fps <= MAX_FLOOR_FRAMES,
                "--seconds {seconds} at --fps {fps}: over {MAX_FLOOR_FRAMES} frames"
            );
            let delay_us = us(delay_ms / 1000.0, "--delay-ms")?;
            let mut delays = link.frame_delay_floor(from_us, to_us, fps, frame_bytes, delay_us);
            anyhow::ensure!(
                !delays.is_empty(),
                "{capacity:?} has no bottleneck, or no frame falls in --from/--seconds"
            );
            delays.sort_unstable();
            let at = |q: f64| {
                let i = ((delays.len() as f64 * q) as usize).min(delays.len() - 1);
                delays[i] as f64 / 1000.0
            };
            println!(
                "frame delay floor over {} frames of {frame_bytes} B: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                delays.len(),
                at(0.5),
                at(0.95),
                at(0.99),
                at(1.0)
            );
            Ok(())
        }
        Command::Proxy {
            listen,
            to,
            link,
            down,
            up,
            no_tcp,
            json,
            every,
            seconds,
        } => {
            anyhow::ensure!(
                (0.05..=3600.0).contains(&every),
                "--every {every}: give 0.05 to 3600 seconds"
            );
            let config = |own: &str| -> anyhow::Result<LinkConfig> {
                let mut config = LinkConfig::parse(&link)?;
                config.apply(own)?;
                Ok(config)
            };
            let (up, down) = (
                config(&up).context("--up")?,
                config(&down).context("--down")?,
            );
            let described = format!(
                "down: {}; up: {}",
                lantern_netem::describe(&down),
                lantern_netem::describe(&up)
            );
            // One stream for the run: a `ctrl_c()` made anew each turn missed a SIGINT that
            // came while a report was written, and ci/bench waited on the proxy for good.
            let mut interrupt =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                    .context("watching SIGINT")?;
            let proxy = Proxy::start(listen, to, up, down, !no_tcp).await?;
            eprintln!("lantern-netem: {} → {to} ({described})", proxy.addr());
            let deadline = async {
                match seconds {
                    Some(s) => tokio::time::sleep(Duration::try_from_secs_f64(s)?).await,
                    None => std::future::pending().await,
                }
                anyhow::Ok(())
            };
            tokio::pin!(deadline);
            let mut tick = tokio::time::interval(Duration::from_secs_f64(every));
            tick.tick().await;
            let mut last = proxy.stats();
            loop {
                tokio::select! {
                    _ = interrupt.recv() => break,
                    done = &mut deadline => { done.context("--seconds")?; break }
                    _ = tick.tick() => {
                        let now = proxy.stats();
                        report(&last, &now, json)?;
                        last = now;
                    }
                }
            }
            let end = proxy.stats();
            proxy.stop().await?;
            eprintln!("lantern-netem: {}", serde_json::to_string(&end)?);
            Ok(())
        }
    }
}

/// One second's figures: JSON on stdout, or a line for a person on stderr.
fn report(last: &Stats, now: &Stats, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(now)?);
        return Ok(());
    }
    let seconds = (now.elapsed_us - last.elapsed_us).max(1) as f64 / 1e6;
    let side = |name: &str, a: &lantern_netem::Direction, b: &lantern_netem::Direction| {
        let mbit = |bytes: u64| bytes as f64 * 8.0 / 1e6 / seconds;
        let used = mbit(b.counters.delivered_bytes - a.counters.delivered_bytes);
        let capacity = match (a.capacity_bits, b.capacity_bits) {
            (Some(a), Some(b)) => format!("/{:.1}", (b - a) as f64 / 1e6 / seconds),
            _ => String::new(),
        };
        format!(
            "{name} {used:.1}{capacity} Mbit/s · queue {} ({} kB) · lost {} · dropped {}",
            b.queue_packets,
            b.queue_bytes / 1000,
            (b.counters.lost + b.counters.lost_outage) - (a.counters.lost + a.counters.lost_outage),
            b.counters.dropped_queue - a.counters.dropped_queue,
        )
    };
    eprintln!(
        "{} | {} | {} client(s)",
        side("down", &last.down, &now.down),
        side("up", &last.up, &now.up),
        now.flows
    );
    Ok(())
}
