//! `palisade health`: exit 0 when a service of this machine answers `/health`
//! (a container's HEALTHCHECK: the image has no curl).

use crate::config::Config;
use anyhow::bail;

pub fn run(config: &Config) -> anyhow::Result<()> {
    let mut said = Vec::new();
    for mut addr in [config.server.ingest_addr, config.server.screening_addr] {
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let url = format!("http://{addr}/health");
        let answer = tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
            let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(2)).build()?;
            client.get(&url).send().await?.error_for_status()?.text().await
        });
        match answer {
            Ok(body) => {
                println!("{url}: {body}");
                return Ok(());
            }
            Err(e) => said.push(format!("{url}: {e}")),
        }
    }
    bail!("no service answers: {}", said.join("; "))
}
