//! `fanout`: many subscribers to one broadcast, each on its own QUIC connection, as many
//! viewers of one relay would be. They only receive (no decoding, so that a hundred of them
//! fit on a small client machine) and time each frame's arrival against its capture time
//! from the broadcast clock. A real `moq-sub` run beside them gives the decoded view.

use std::time::Duration;

use lantern_net::{self as net, ConnectArgs};
use lantern_proto::{clock, histogram::Histogram};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
    #[arg(long)]
    name: String,
    /// Number of subscribers.
    #[arg(long)]
    subscribers: u32,
    /// Each subscriber stops after this many frames (or when the broadcast ends).
    #[arg(long)]
    frames: u64,
}

/// What one subscriber saw.
struct Seen {
    frames: u64,
    arrival: Histogram,
    error: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(fanout(args))
}

async fn fanout(args: Args) -> anyhow::Result<()> {
    let timeout = args.connect.timeout()?;
    let give_up = args.connect.give_up(Some(Duration::from_secs(30)))?;
    let (client, relays) = args.connect.client(give_up)?;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.subscribers {
        // Spread over the relays given (a cluster's edges), each with the rest as fallbacks.
        let (client, relays, name) = (
            client.clone(),
            relays.rotated(index as usize),
            args.name.clone(),
        );
        tasks.spawn(async move {
            let mut seen = Seen {
                frames: 0,
                arrival: Histogram::new(),
                error: None,
            };
            if let Err(e) = subscribe(client, relays, &name, timeout, args.frames, &mut seen).await
            {
                seen.error = Some(format!("{e:#}"));
            }
            seen
        });
    }
    let mut arrival = Histogram::new();
    let mut delivered = Vec::new();
    let mut errors = Vec::new();
    while let Some(seen) = tasks.join_next().await {
        let seen = seen?;
        arrival.merge(&seen.arrival);
        delivered.push(seen.frames);
        errors.extend(seen.error);
    }
    let ms = |us: Option<u64>| us.map(|us| (us as f64 / 10.0).round() / 100.0);
    println!(
        "{}",
        json!({
            "role": "fanout",
            "subscribers": args.subscribers,
            "delivered_min": delivered.iter().min(),
            "delivered_max": delivered.iter().max(),
            "delivered_total": delivered.iter().sum::<u64>(),
            "arrival_ms_p50": ms(arrival.quantile(0.5)),
            "arrival_ms_p99": ms(arrival.quantile(0.99)),
            "arrival_ms_max": ms(arrival.max()),
            "errors": errors.len(),
            "first_error": errors.first(),
        })
    );
    Ok(())
}

async fn subscribe(
    client: moq_tokio::Client,
    relays: net::Relays,
    name: &str,
    timeout: Duration,
    frames: u64,
    seen: &mut Seen,
) -> anyhow::Result<()> {
    let origin = moq_tokio::origin::spawn();
    let dialing = client
        .with_subscriber(origin.clone())
        .connect(relays.addrs());
    let connection = net::established(dialing, &relays, timeout).await?;
    let mut video = tokio::time::timeout(timeout, moq_sub::Video::open(&origin, name))
        .await
        .map_err(|_| anyhow::anyhow!("broadcast {name:?} not found within {timeout:?}"))??;
    while seen.frames < frames {
        let Some(frame) = tokio::time::timeout(timeout, video.feed.read())
            .await?
            .map_err(|e| anyhow::anyhow!(e))?
        else {
            break;
        };
        let arrived = clock::now_unix_us();
        seen.frames += 1;
        if let Some(sent) = frame.captured_us {
            seen.arrival.record(clock::elapsed_us(sent, arrived));
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), connection.close()).await;
    Ok(())
}
