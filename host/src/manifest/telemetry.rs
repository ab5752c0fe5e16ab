//! `[telemetry]`: where the Prometheus endpoint listens, and how many metric series guests
//! may create.

use std::net::{Ipv4Addr, SocketAddr};

use super::ManifestError;
use super::parse::Parser;
use super::raw::RawTelemetry;
use crate::telemetry::SeriesLimits;

const FIELD: &str = "telemetry.prometheus";

/// The most metric series a manifest lets guests create on a node: each costs the recorder
/// some hundreds of bytes (a histogram with its buckets, a few KiB), so this keeps a node's
/// metrics in tens of MiB and a scrape in a few MiB.
pub const MAX_SERIES: usize = 100_000;

impl Parser<'_> {
    /// `prometheus = "IP:PORT"`, or a port alone on 127.0.0.1.
    pub(super) fn prometheus(
        &self,
        raw: Option<&RawTelemetry>,
    ) -> Result<Option<SocketAddr>, ManifestError> {
        let Some(value) = raw.and_then(|t| t.prometheus.as_ref()) else {
            return Ok(None);
        };
        let span = value.span();
        match value.get_ref() {
            toml::Value::String(s) => s.parse::<SocketAddr>().map(Some).map_err(|_| {
                self.error(
                    &span,
                    FIELD,
                    format!("{s:?} is not an address: write IP:PORT, like \"127.0.0.1:9568\""),
                )
            }),
            toml::Value::Integer(port) => u16::try_from(*port)
                .map(|port| Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port))))
                .map_err(|_| self.error(&span, FIELD, format!("port {port} is not in 0..=65535"))),
            _ => Err(self.error(
                &span,
                FIELD,
                "expected an address \"IP:PORT\" or a port number",
            )),
        }
    }

    /// `max_series`, at most [`MAX_SERIES`], and `max_series_per_module`, at most
    /// `max_series` (0 for either: no series).
    pub(super) fn series_limits(
        &self,
        raw: Option<&RawTelemetry>,
    ) -> Result<SeriesLimits, ManifestError> {
        let mut limits = SeriesLimits::default();
        let Some(raw) = raw else {
            return Ok(limits);
        };
        if let Some(max) = &raw.max_series {
            let n = usize::try_from(*max.get_ref())
                .ok()
                .filter(|n| *n <= MAX_SERIES)
                .ok_or_else(|| {
                    self.error(
                        &max.span(),
                        "telemetry.max_series",
                        format!("at most {MAX_SERIES}"),
                    )
                })?;
            limits.max_series(n);
        }
        if let Some(share) = &raw.max_series_per_module {
            let n = usize::try_from(*share.get_ref())
                .ok()
                .filter(|n| *n <= limits.max())
                .ok_or_else(|| {
                    self.error(
                        &share.span(),
                        "telemetry.max_series_per_module",
                        format!(
                            "at most telemetry.max_series ({}): a module's share of the node's",
                            limits.max()
                        ),
                    )
                })?;
            limits.max_series_per_module(n);
        }
        Ok(limits)
    }
}
