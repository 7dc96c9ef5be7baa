//! `clause-load`: send a mixed load to `clause serve --http` and print
//! throughput, latency percentiles and what the misbehaving clients got.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clause_load::{Plan, Report, run};

/// Load-test a running `clause serve --http`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address of the server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    address: String,
    /// Requests to send.
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// File of texts to draw from: one per line, either plain text or a JSON
    /// object with a `text` field (as `clause segment --format jsonl` writes).
    #[arg(long, value_name = "FILE")]
    texts: PathBuf,
    /// Seed of the draw of request sizes and texts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also run misbehaving clients (oversized, malformed and slow requests)
    /// alongside the load.
    #[arg(long)]
    abusers: bool,
    /// Body size the oversized clients announce (above the server's
    /// --max-body-bytes).
    #[arg(long, default_value_t = 2 << 20)]
    oversized_bytes: usize,
    /// A flood: count 503 with Retry-After as turned away rather than failed
    /// (run with a concurrency above the server's --max-connections).
    #[arg(long)]
    flood: bool,
    /// Seconds to wait for any one response.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

fn read_texts(path: &PathBuf) -> Result<Vec<String>, String> {
    let contents = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let mut texts = Vec::new();
    for (number, line) in contents.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('{') {
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|err| format!("{} line {}: {err}", path.display(), number + 1))?;
            let text = value["text"]
                .as_str()
                .ok_or_else(|| format!("{} line {}: expected a string field `text`", path.display(), number + 1))?;
            texts.push(text.to_string());
        } else {
            texts.push(line.to_string());
        }
    }
    Ok(texts)
}

fn print(report: &Report, plan: &Plan) {
    let seconds = report.elapsed.as_secs_f64();
    println!("requests      {} at concurrency {}", report.requests, plan.concurrency);
    println!("served        {} ({} turned away with 503, {} failed)", report.served, report.turned_away, report.failed);
    println!("statuses      {:?}", report.statuses);
    println!("texts         {}", report.texts);
    println!("wall          {seconds:.1} s");
    println!(
        "throughput    {:.1} requests/s, {:.1} texts/s",
        report.served as f64 / seconds,
        report.texts as f64 / seconds
    );
    let ms = |q: f64| report.percentile(q).as_secs_f64() * 1e3;
    println!(
        "latency       p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(1.0)
    );
    println!("reconnects    {}", report.reconnects);
    for (kind, abuse) in &report.abuse {
        println!(
            "{kind:<13} {} attempts, statuses {:?}, {} without a response",
            abuse.attempts, abuse.statuses, abuse.no_response
        );
    }
    for failure in &report.failures {
        println!("failure       {failure}");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let address: Option<SocketAddr> = args.address.to_socket_addrs().ok().and_then(|mut found| found.next());
    let Some(address) = address else {
        eprintln!("error: --address {}: expected HOST:PORT", args.address);
        return ExitCode::FAILURE;
    };
    let texts = match read_texts(&args.texts) {
        Ok(texts) => texts,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let plan = Plan {
        address,
        requests: args.requests,
        concurrency: args.concurrency,
        texts,
        seed: args.seed,
        abusers: args.abusers,
        oversized_bytes: args.oversized_bytes,
        timeout: Duration::from_secs(args.timeout_secs),
        flood: args.flood,
    };
    match run(&plan) {
        Ok(report) => {
            print(&report, &plan);
            if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
