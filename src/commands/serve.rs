//! `clause serve`.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::ServeArgs;
use crate::commands::common::load_model;
use clause_serve::{Limits, ModelInfo, Service, Shutdown, exposure_warning, serve_http, serve_stdio};

pub fn run(args: &ServeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if !args.stdio && args.http.is_none() {
        bail!("choose how to serve: --stdio, or --http [ADDR] (default 127.0.0.1:8080)");
    }
    let limits = limits(args)?;
    if let Some(t) = args.threshold
        && !(0.0..=1.0).contains(&t)
    {
        bail!("--threshold {t}: expected a probability between 0 and 1");
    }
    // Bind before loading the model, so that a taken port fails at once;
    // connections made meanwhile wait in the backlog.
    let listener = match &args.http {
        Some(address) => {
            Some(TcpListener::bind(address.as_str()).with_context(|| format!("--http {address}: cannot listen"))?)
        }
        None => None,
    };
    let classifier = load_model(&args.model, &args.device)?;
    let thresholds = match args.threshold {
        Some(t) => vec![t; classifier.labels().len()],
        None => classifier.thresholds(),
    };
    let model = ModelInfo {
        name: model_name(&args.model),
        labels: classifier.labels().to_vec(),
        thresholds,
        unit: classifier.unit(),
    };
    let shutdown = Shutdown::new();
    {
        let shutdown = shutdown.clone();
        ctrlc::set_handler(move || {
            if shutdown.trigger() {
                eprintln!("second signal: exiting without finishing requests");
                std::process::exit(130);
            }
            eprintln!("stopping: finishing the requests in flight (signal again to exit now)");
        })
        .context("installing the SIGINT/SIGTERM handler")?;
    }
    let service = Service::start(Box::new(classifier), model, limits).context("starting the inference thread")?;
    let served = match listener {
        Some(listener) => {
            let bound = listener.local_addr().context("reading the bound address")?;
            if let Some(warning) = exposure_warning(bound) {
                eprintln!("{warning}");
            }
            // Tests and scripts read this line for the port that 0 picked.
            eprintln!("listening on http://{bound}");
            serve_http(listener, service.clone(), shutdown.clone()).context("serving HTTP")
        }
        None => {
            let input = Box::new(std::io::BufReader::new(std::io::stdin()));
            serve_stdio(input, out, &service, &shutdown).context("serving stdin")
        }
    };
    service.stop();
    served?;
    tracing::info!("stopped");
    Ok(())
}

fn limits(args: &ServeArgs) -> anyhow::Result<Limits> {
    for (flag, value) in [
        ("--max-body-bytes", args.max_body_bytes),
        ("--max-texts", args.max_texts),
        ("--max-text-chars", args.max_text_chars),
        ("--max-batch", args.max_batch),
        ("--queue", args.queue),
        ("--max-connections", args.max_connections),
    ] {
        if value == 0 {
            bail!("{flag} must be at least 1");
        }
    }
    if args.timeout_secs == 0 {
        bail!("--timeout-secs must be at least 1");
    }
    if args.queue < args.max_texts {
        bail!("--queue {} is smaller than --max-texts {}: one request could never fit", args.queue, args.max_texts);
    }
    Ok(Limits {
        max_body_bytes: args.max_body_bytes,
        max_texts: args.max_texts,
        max_text_chars: args.max_text_chars,
        max_batch: args.max_batch,
        max_wait: Duration::from_millis(args.max_wait_ms),
        queue_texts: args.queue,
        max_connections: args.max_connections,
        client_timeout: Duration::from_secs(args.timeout_secs),
    })
}

/// The model directory's name, as responses give it.
fn model_name(dir: &Path) -> String {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    canonical.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())
}
