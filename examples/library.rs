//! haul as a library, offline: serves a few generated files from a temp
//! directory with haul's own server, downloads them with a checksum each,
//! and prints every event as it arrives.
//!
//! Run with `cargo run --example library`.

#![allow(clippy::print_stdout)]

use haul::{Downloader, Event, Job};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let src = std::env::temp_dir().join("haul-example-src");
    let out = std::env::temp_dir().join("haul-example-out");
    std::fs::create_dir_all(&src)?;
    // The server's port, so every URL, changes from run to run, and haul
    // will not replace a file it fetched from another URL: start afresh.
    let _ = std::fs::remove_dir_all(&out);
    let mut sums = Vec::new();
    for (i, len) in [1_000usize, 300_000, 5_000_000].into_iter().enumerate() {
        let body: Vec<u8> = (0..len).map(|n| (n * 31 + i) as u8).collect();
        let name = format!("file-{i}.bin");
        std::fs::write(src.join(&name), &body)?;
        sums.push((name, <[u8; 32]>::from(Sha256::digest(&body))));
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stop_server = CancellationToken::new();
    let options = haul::serve::ServeOptions { limit_rate: None };
    tokio::spawn(haul::serve::serve(
        listener,
        src,
        options,
        stop_server.clone(),
    ));

    let mut downloader = Downloader::builder(&out).jobs(2).max_tries(3).build()?;
    for (name, sha256) in &sums {
        let job = Job::new(&format!("{base}/{name}"))?
            .dir("data")?
            .sha256(*sha256);
        downloader.add(job);
    }
    let (mut events, run) = downloader.spawn();
    while let Some(event) = events.recv().await {
        match event {
            Event::Progress { .. } => {}
            Event::Finished {
                path,
                bytes,
                sha256,
                ..
            } => {
                println!("finished {path}: {bytes} bytes, sha256 {sha256}")
            }
            other => println!("{other:?}"),
        }
    }
    let report = run.await??;
    stop_server.cancel();
    println!(
        "{} done, {} failed, {} skipped into {}",
        report.done,
        report.failed,
        report.skipped,
        out.display()
    );
    Ok(())
}
