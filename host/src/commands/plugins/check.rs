//! `palisade plugins check`: a component's world, imports, exports, compile
//! time and its verdict on a sample event.

use anyhow::{Context, bail};
use palisade_core::Event;
use palisade_plugins::runtime::sha256_hex;
use palisade_plugins::{Manifest, PluginKind, PluginVersion, Runtime, to_wit};
use std::path::Path;
use std::time::Instant;

pub fn run(file: &Path, manifest: Option<&Path>, text: &str) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = Runtime::new(None)?;
    let (component, compile) = runtime.time_compile(&wasm)?;
    println!("file:     {} ({} bytes, sha256 {})", file.display(), wasm.len(), sha256_hex(&wasm));
    println!("compile:  {:.1} ms", compile.as_secs_f64() * 1e3);
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(runtime.engine()).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(runtime.engine()).map(|(n, _)| n.to_string()).collect();
    println!("imports:  {}", imports.join(", "));
    println!("          (only palisade:plugin/host is provided; any other import traps if called)");
    let mut needs: Vec<&str> = palisade_plugins::capabilities::imported(runtime.engine(), &component)
        .into_iter()
        .filter_map(|(_, c)| c.map(|c| c.as_str()))
        .collect();
    needs.sort();
    needs.dedup();
    println!("needs:    capabilities = {needs:?} (its manifest must grant these)");
    println!("exports:  {}", exports.join(", "));
    let detected = runtime.detect_kind(&component);
    println!("world:    {}", detected.map_or("none of heuristic, validator, platform-adapter", |k| k.as_str()));
    let manifest = match manifest {
        Some(path) => {
            let m = Manifest::parse(&std::fs::read_to_string(path)?).with_context(|| format!("{}", path.display()))?;
            if Some(m.kind) != detected {
                bail!(
                    "manifest declares kind `{}` but the component implements {:?}",
                    m.kind.as_str(),
                    detected.map(|k| k.as_str())
                );
            }
            m
        }
        None => {
            let Some(kind) = detected else { bail!("not a Palisade plugin: it implements none of the worlds") };
            let all = palisade_plugins::capabilities::ALL.map(|c| format!("{:?}", c.as_str())).join(", ");
            Manifest::parse(&format!(
                "name = \"check\"\nversion = \"0\"\nkind = \"{}\"\ncapabilities = [{all}]\n",
                kind.as_str()
            ))?
        }
    };
    let version = PluginVersion::load(&runtime, manifest, &wasm, false)?;
    let events = to_wit(&[Event::sample(text)]);
    let started = Instant::now();
    let result = match version.kind() {
        PluginKind::Heuristic => version.score(&events).map(|s| format!("{:?}", s.verdicts)),
        PluginKind::Validator => version.validate(&events).map(|v| format!("{v:?}")),
        PluginKind::PlatformAdapter => version.platform().map(|p| format!("platform = {p:?}")),
    };
    println!("sample:   {text:?}");
    match result {
        Ok(out) => println!("result:   {out}\ncall:     {:.1} µs", started.elapsed().as_secs_f64() * 1e6),
        Err(fault) => bail!("the plugin failed on the sample event: {fault}"),
    }
    Ok(())
}
