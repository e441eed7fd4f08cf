//! The example servers' TLS options: `--tls-cert PATH --tls-key PATH`.

use std::path::PathBuf;

use evio_tls::{MIN_INPUT_CAPACITY, TlsConfig};

/// `--tls-cert` and `--tls-key`: both, or neither (plain TCP).
#[derive(clap::Args, Debug)]
pub struct TlsArgs {
    /// Speak TLS (1.3 and 1.2, rustls on ring) with this PEM certificate chain, leaf
    /// first. Needs --tls-key.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS configuration asked for, offering `alpn`; `None` for plain TCP.
    ///
    /// # Errors
    ///
    /// What is wrong with the certificate or key, for the command line's error.
    pub fn config(&self, alpn: &[&[u8]]) -> Result<Option<TlsConfig>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let config = TlsConfig::from_pem_files(cert, key).map_err(|e| e.to_string())?;
        Ok(Some(config.with_alpn(alpn)))
    }
}

/// The input buffer an example uses: `given`, or by default 16 KiB, raised for TLS to
/// hold a whole record (a `given` too small for TLS is refused when the server
/// builds, saying the minimum).
pub fn input_capacity(given: Option<usize>, tls: bool) -> usize {
    match given {
        Some(n) => n,
        None if tls => MIN_INPUT_CAPACITY.next_multiple_of(1024),
        None => 16 * 1024,
    }
}

/// Serves the handlers `make` makes for each loop (see [`super::serve_loops`]), behind
/// TLS when `tls` is given.
pub fn serve_loops<H: evio::Events>(
    name: &str,
    builder: evio::ServerBuilder,
    tls: Option<TlsConfig>,
    make: impl Fn(usize) -> H + Sync,
    addrs: &[String],
) -> std::process::ExitCode {
    match tls {
        Some(tls) => super::serve_loops(
            name,
            builder,
            |i| evio_tls::Tls::new(make(i), tls.clone()),
            addrs,
        ),
        None => super::serve_loops(name, builder, make, addrs),
    }
}
