//! `[telemetry]`: where the Prometheus endpoint listens.

use std::net::{Ipv4Addr, SocketAddr};

use super::ManifestError;
use super::parse::Parser;
use super::raw::RawTelemetry;

const FIELD: &str = "telemetry.prometheus";

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
}
