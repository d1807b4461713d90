//! A node's counters and the HTTP endpoint that exposes them to Prometheus
//! (`GET /metrics`) and to orchestrators (`GET /healthz`: 200 serving, 503
//! draining).
//!
//! The endpoint is a few lines over a TCP listener rather than a web
//! framework: two fixed paths, no bodies to parse.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Counters of one node; shared by its services, updated lock-free.
#[derive(Debug, Default)]
pub struct Metrics {
    pub sessions_running: AtomicI64,
    pub sessions_done: AtomicU64,
    /// Sessions that could not run or were abandoned (their launcher re-runs them).
    pub sessions_failed: AtomicU64,
    /// Parties this node plays in sessions hosted elsewhere.
    pub seats_running: AtomicI64,
    pub offers: AtomicU64,
    /// Launcher or peer streams that broke.
    pub stream_errors: AtomicU64,
    pub launchers: AtomicI64,
    pub draining: AtomicBool,
    /// Offers per second over the last window, as f64 bits.
    offers_per_second: AtomicU64,
}

impl Metrics {
    pub fn offers_per_second(&self) -> f64 {
        f64::from_bits(self.offers_per_second.load(Ordering::Relaxed))
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, node: &str) -> String {
        let node = node.replace('\\', "\\\\").replace('"', "\\\"");
        let count = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let gauge = |a: &AtomicI64| a.load(Ordering::Relaxed) as f64;
        let rows: [(&str, &str, &str, f64); 9] = [
            ("sessions_running", "gauge", "Sessions hosted on this node now.", gauge(&self.sessions_running)),
            ("sessions_done_total", "counter", "Sessions finished here.", count(&self.sessions_done)),
            (
                "sessions_failed_total",
                "counter",
                "Sessions that could not run or were abandoned here.",
                count(&self.sessions_failed),
            ),
            (
                "seats_running",
                "gauge",
                "Parties played here in sessions hosted by other nodes.",
                gauge(&self.seats_running),
            ),
            ("offers_total", "counter", "Offers made in sessions hosted here.", count(&self.offers)),
            (
                "offers_per_second",
                "gauge",
                "Offers per second in sessions hosted here, over the last 5 s.",
                self.offers_per_second(),
            ),
            (
                "stream_errors_total",
                "counter",
                "Launcher and node-to-node streams that broke.",
                count(&self.stream_errors),
            ),
            ("launchers", "gauge", "Launchers connected now.", gauge(&self.launchers)),
            (
                "draining",
                "gauge",
                "1 while the node drains before stopping.",
                f64::from(u8::from(self.draining.load(Ordering::Relaxed))),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP negotium_{name} {help}\n# TYPE negotium_{name} {kind}\nnegotium_{name}{{node=\"{node}\"}} {value}"
            );
        }
        out
    }

    /// Updates the offers-per-second gauge every `every` until the process ends.
    pub async fn keep_rate(self: Arc<Self>, every: Duration) {
        let mut last = (Instant::now(), self.offers.load(Ordering::Relaxed));
        loop {
            tokio::time::sleep(every).await;
            let now = (Instant::now(), self.offers.load(Ordering::Relaxed));
            let rate = (now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64().max(1e-9);
            self.offers_per_second.store(rate.to_bits(), Ordering::Relaxed);
            last = now;
        }
    }
}

/// Answers `GET /metrics` and `GET /healthz` on `listener` forever.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, node: String) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let (metrics, node) = (metrics.clone(), node.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // Read the request head (bounded; slow or huge requests are dropped).
            let head = tokio::time::timeout(Duration::from_secs(5), async {
                while n < buf.len() {
                    match stream.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            if head.is_err() {
                return;
            }
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, body, kind) = match path {
                "/metrics" => ("200 OK", metrics.render(&node), "text/plain; version=0.0.4"),
                "/healthz" if metrics.draining.load(Ordering::Relaxed) => {
                    ("503 Service Unavailable", "draining\n".to_string(), "text/plain")
                }
                "/healthz" => ("200 OK", "ok\n".to_string(), "text/plain"),
                _ => ("404 Not Found", "try /metrics or /healthz\n".to_string(), "text/plain"),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_counter() {
        let m = Metrics::default();
        m.sessions_done.store(7, Ordering::Relaxed);
        let text = m.render("node-0");
        assert!(text.contains("negotium_sessions_done_total{node=\"node-0\"} 7"), "{text}");
        for name in ["sessions_running", "sessions_failed_total", "offers_total", "stream_errors_total"] {
            assert!(text.contains(&format!("# TYPE negotium_{name} ")), "{name}");
        }
    }
}
